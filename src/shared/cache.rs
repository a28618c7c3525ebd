//! A bounded in-process TTL cache and a single-flight group. Used for user documents (hot path of
//! every request) and for backend-token validations (keyed by a hash, never by the token).

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

pub struct TtlCache<K, V> {
    entries: Mutex<HashMap<K, (V, Instant)>>,
    capacity: usize,
}

/// A poisoned lock only means another thread panicked mid-update of a cache: the map is still a
/// valid map, so keep using it rather than failing every request.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(capacity: usize) -> Self {
        TtlCache {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    pub fn get(&self, key: &K) -> Option<V> {
        let mut map = lock(&self.entries);
        match map.get(key) {
            Some((v, until)) if *until > Instant::now() => Some(v.clone()),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    pub fn insert(&self, key: K, value: V, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut map = lock(&self.entries);
        if map.len() >= self.capacity && !map.contains_key(&key) {
            map.retain(|_, (_, until)| *until > now);
            // Still full of live entries: drop the ones closest to expiry (a tenth of the cache).
            if map.len() >= self.capacity {
                let mut by_expiry: Vec<(K, Instant)> =
                    map.iter().map(|(k, (_, u))| (k.clone(), *u)).collect();
                by_expiry.sort_by_key(|(_, u)| *u);
                for (k, _) in by_expiry.into_iter().take(self.capacity / 10 + 1) {
                    map.remove(&k);
                }
            }
        }
        // A TTL past what the clock can hold is capped (config bounds make this unreachable).
        let until = now
            .checked_add(ttl)
            .unwrap_or(now + Duration::from_secs(365 * 24 * 3600));
        map.insert(key, (value, until));
    }

    pub fn remove(&self, key: &K) {
        lock(&self.entries).remove(key);
    }

    pub fn retain(&self, mut keep: impl FnMut(&K, &V) -> bool) {
        lock(&self.entries).retain(|k, (v, _)| keep(k, v));
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        lock(&self.entries).len()
    }
}

/// Runs one future per key at a time; concurrent callers with the same key share its result.
pub struct SingleFlight<K, V> {
    inflight: Mutex<HashMap<K, Arc<OnceCell<V>>>>,
    /// Callers that found a run in flight and shared it (a metric).
    joins: AtomicU64,
}

impl<K: Eq + Hash + Clone, V: Clone> SingleFlight<K, V> {
    pub fn new() -> Self {
        SingleFlight {
            inflight: Mutex::new(HashMap::new()),
            joins: AtomicU64::new(0),
        }
    }

    pub fn joins(&self) -> u64 {
        self.joins.load(Ordering::Relaxed)
    }

    pub async fn run<F, Fut>(&self, key: K, f: F) -> V
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        let cell = {
            let mut map = lock(&self.inflight);
            match map.get(&key) {
                Some(cell) => {
                    self.joins.fetch_add(1, Ordering::Relaxed);
                    cell.clone()
                }
                None => {
                    let cell = Arc::new(OnceCell::new());
                    map.insert(key.clone(), cell.clone());
                    cell
                }
            }
        };
        let value = cell.get_or_init(f).await.clone();
        let mut map = lock(&self.inflight);
        if map.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            map.remove(&key);
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn expires_and_is_bounded() {
        let c = TtlCache::new(10);
        c.insert(1, "a", Duration::from_millis(30));
        assert_eq!(c.get(&1), Some("a"));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(c.get(&1), None);
        for i in 0..100 {
            c.insert(i, "x", Duration::from_secs(60));
        }
        assert!(c.len() <= 10);
        c.insert(5000, "zero", Duration::ZERO);
        assert_eq!(c.get(&5000), None);
    }

    fn has(c: &TtlCache<u32, u32>, k: u32) -> bool {
        c.get(&k).is_some()
    }

    #[test]
    fn item_14_18_eviction_drops_expired_entries_first() {
        let c = TtlCache::new(10);
        for k in 0..10 {
            // Key 3 expires at once; the others live long, key 0 the shortest.
            let ttl = if k == 3 {
                Duration::from_millis(1)
            } else {
                Duration::from_secs(100 + u64::from(k))
            };
            c.insert(k, k, ttl);
        }
        std::thread::sleep(Duration::from_millis(5));
        c.insert(10, 10, Duration::from_secs(500));
        // Only the expired entry made room: no live entry was dropped.
        assert_eq!(c.len(), 10);
        assert!((0..=10).filter(|k| *k != 3).all(|k| has(&c, k)));
        assert!(!has(&c, 3));
    }

    #[test]
    fn item_14_18_full_of_live_entries_drops_the_tenth_closest_to_expiry() {
        // Expiry order differs from insertion order: key k lives 100 - k seconds.
        let c = TtlCache::new(20);
        for k in 0..20 {
            c.insert(k, k, Duration::from_secs(100 - u64::from(k)));
        }
        c.insert(20, 20, Duration::from_secs(1000));
        // 20 / 10 + 1 = 3 dropped: the three closest to expiry (19, 18, 17), then 20 inserted.
        assert_eq!(c.len(), 18);
        assert!(!has(&c, 19) && !has(&c, 18) && !has(&c, 17));
        assert!((0..=16).all(|k| has(&c, k)) && has(&c, 20));

        // Replacing a present key when full drops nothing.
        c.insert(21, 21, Duration::from_secs(1000));
        c.insert(22, 22, Duration::from_secs(1000));
        assert_eq!(c.len(), 20);
        c.insert(5, 55, Duration::from_secs(1000));
        assert_eq!(c.len(), 20);
        assert_eq!(c.get(&5), Some(55));

        // Capacity below 10 still drops one; capacity 0 is taken as 1.
        for cap in [0, 1, 9] {
            let c = TtlCache::new(cap);
            let cap = cap.max(1) as u32;
            for k in 0..cap {
                c.insert(k, k, Duration::from_secs(100 + u64::from(k)));
            }
            c.insert(99, 99, Duration::from_secs(1000));
            assert_eq!(c.len(), cap as usize, "capacity {cap}");
            assert!(!has(&c, 0) && has(&c, 99), "capacity {cap}");
        }
    }

    #[tokio::test]
    async fn single_flight_runs_once_for_concurrent_callers() {
        let sf = Arc::new(SingleFlight::<u8, usize>::new());
        let calls = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        for _ in 0..20 {
            let (sf, calls) = (sf.clone(), calls.clone());
            handles.push(tokio::spawn(async move {
                sf.run(1, || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    7
                })
                .await
            }));
        }
        for h in handles {
            assert_eq!(h.await.unwrap(), 7);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // #10.7: everyone but the first joined the run in flight.
        assert_eq!(sf.joins(), 19);
        // Afterwards a new call runs again.
        assert_eq!(sf.run(1, || async { 8 }).await, 8);
    }
}
