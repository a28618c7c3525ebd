//! A collection of the package's own whose indexes it creates itself, once, at first use
//! (whatever LibreChat's `MONGO_AUTO_INDEX` says); `doctor` checks them (`doctor/own_indexes.rs`).

use mongodb::bson::{doc, Document};
use mongodb::options::IndexOptions;
use mongodb::{Collection, Database, IndexModel};
use tokio::sync::OnceCell;

use crate::shared::error::AuthResult;

pub struct Indexed {
    collection: Collection<Document>,
    indexes: fn() -> Vec<IndexModel>,
    ready: OnceCell<()>,
}

impl Indexed {
    pub fn new(db: &Database, name: &str, indexes: fn() -> Vec<IndexModel>) -> Indexed {
        Indexed {
            collection: db.collection(name),
            indexes,
            ready: OnceCell::new(),
        }
    }

    /// The collection, its indexes created (retried at the next use if that failed).
    pub async fn get(&self) -> AuthResult<&Collection<Document>> {
        self.ready
            .get_or_try_init(|| async {
                self.collection.create_indexes((self.indexes)()).await?;
                AuthResult::Ok(())
            })
            .await?;
        Ok(&self.collection)
    }
}

/// The TTL index of a collection whose documents carry their own `expiresAt` (MongoDB deletes each
/// at that time). Named as MongoDB would name it, so that an index created without a name matches.
pub fn expiry_index() -> IndexModel {
    IndexModel::builder()
        .keys(doc! { "expiresAt": 1 })
        .options(
            IndexOptions::builder()
                .name("expiresAt_1".to_string())
                .expire_after(std::time::Duration::ZERO)
                .build(),
        )
        .build()
}
