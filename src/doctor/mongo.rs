//! What the database checks share: reading a collection's indexes, and why the database did not
//! answer, in words that carry no connection string.

use std::time::Duration;

use mongodb::bson::{doc, Document};

/// Why the database did not answer, in words that carry no connection string.
pub fn db_reason(e: &mongodb::error::Error, timeout: Duration) -> String {
    use mongodb::error::ErrorKind;
    match &*e.kind {
        ErrorKind::ServerSelection { message, .. } => {
            let m = message.to_ascii_lowercase();
            let why = if m.contains("connection refused") {
                "connection refused"
            } else if m.contains("authentication") || m.contains("auth") && m.contains("fail") {
                "authentication failed: check the user name and password in MONGO_URI"
            } else if m.contains("dns") || m.contains("lookup") {
                "host name not resolved"
            } else if m.contains("tls") || m.contains("certificate") {
                "TLS handshake failed"
            } else {
                "no suitable server"
            };
            format!(
                "{why}; no server selected within {} ms",
                timeout.as_millis()
            )
        }
        ErrorKind::Authentication { .. } => {
            "authentication failed: check the user name and password in MONGO_URI".into()
        }
        ErrorKind::DnsResolve { .. } => "host name not resolved".into(),
        ErrorKind::Io(io) => format!("connection failed ({:?})", io.kind()),
        ErrorKind::Command(c) => format!("server error {} {}", c.code, c.code_name),
        ErrorKind::InvalidTlsConfig { .. } => "invalid TLS options in MONGO_URI".into(),
        _ => "the database answered with an error".into(),
    }
}

/// `listIndexes`' first batch: a collection has at most 64 indexes, well under a batch.
pub async fn list_indexes(
    db: &mongodb::Database,
    collection: &str,
) -> mongodb::error::Result<Vec<Document>> {
    let reply = db.run_command(doc! { "listIndexes": collection }).await?;
    let batch = reply
        .get_document("cursor")
        .and_then(|c| c.get_array("firstBatch"))
        .map(|a| {
            a.iter()
                .filter_map(|b| b.as_document().cloned())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    Ok(batch)
}
