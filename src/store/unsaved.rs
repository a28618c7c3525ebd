//! Backend tokens a refresh got but could not store, kept in this server's memory for a retry.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mongodb::bson::oid::ObjectId;

use crate::identity::BackendTokens;

/// Backend tokens the database refused to store are kept in memory this long for a retry.
const UNSAVED_TTL: Duration = Duration::from_secs(600);
const UNSAVED_MAX: usize = 10_000;

/// Backend tokens a refresh got but the database refused to store, by session, with the version
/// of the stored tokens they replace: a retry on this server refreshes with them instead of the
/// stored (now dead) refresh token. Other servers see them once a background write succeeds
/// (`Service::store_unsaved_later`; docs/sessions-and-tokens.md, "Refresh").
#[derive(Default)]
pub struct Unsaved(Mutex<HashMap<ObjectId, UnsavedTokens>>);

/// The version of the stored tokens they replace, the tokens, when they were got.
type UnsavedTokens = (Option<String>, BackendTokens, Instant);

impl Unsaved {
    pub fn keep(&self, sid: ObjectId, version: Option<String>, tokens: BackendTokens) {
        if let Ok(mut m) = self.0.lock() {
            m.retain(|_, (_, _, at)| at.elapsed() < UNSAVED_TTL);
            if m.len() < UNSAVED_MAX {
                m.insert(sid, (version, tokens, Instant::now()));
            }
        }
    }

    pub fn get(&self, sid: ObjectId, version: Option<&str>) -> Option<BackendTokens> {
        let m = self.0.lock().ok()?;
        let (v, t, at) = m.get(&sid)?;
        (v.as_deref() == version && at.elapsed() < UNSAVED_TTL).then(|| t.clone())
    }

    pub fn forget(&self, sid: ObjectId) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(&sid);
        }
    }
}
