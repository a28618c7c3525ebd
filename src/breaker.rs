//! The circuit breaker in front of the backend: one per backend host (scheme, host and port of the
//! configured URLs), shared by every backend call to that host. After `failures` failures in a row
//! (timeouts, connection errors, 5xx) the host is open: calls fail at once for `cooldown`, then at
//! most `probes` calls at a time go through (half-open); a probe that gets an answer closes it, a
//! probe that fails opens it for another cool-down. Independently, at most `max_pending` calls per
//! host are in flight: a slow backend cannot tie up more, the rest fail at once. LibreChat tokens
//! never come here (only backend calls do).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
#[cfg(test)]
use std::time::Duration;
use std::time::Instant;

use reqwest::Url;

use crate::config::BreakerConfig;
use crate::error::AuthError;

/// The state of one host's breaker; the number is the metrics gauge's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed = 0,
    HalfOpen = 1,
    Open = 2,
}

impl BreakerState {
    pub fn name(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::HalfOpen => "half-open",
            BreakerState::Open => "open",
        }
    }
}

/// Told of every transition (host, new state), outside any lock. For the audit events.
pub type Listener = Arc<dyn Fn(&str, BreakerState) + Send + Sync>;

/// The clock, injected so that the state machine is tested without sleeping.
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// How a call admitted by the breaker ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The backend answered (2xx, 4xx, 429, an unusable body): it is up.
    Answered,
    /// Timeout, connection error or 5xx.
    Failed,
}

impl Outcome {
    /// Only an outage counts against the host: a refusal, a rate limit or an unusable answer came
    /// from a backend that answers, and one user's odd record must not lock everyone out.
    pub fn of<T>(r: &Result<T, AuthError>) -> Outcome {
        match r {
            Err(AuthError::BackendUnavailable(_) | AuthError::BackendTimeout) => Outcome::Failed,
            _ => Outcome::Answered,
        }
    }
}

struct Inner {
    state: BreakerState,
    /// Failures in a row while closed.
    failures: u32,
    /// When it last opened (the cool-down's start).
    opened_at: Instant,
    /// Probes in flight while half-open.
    probes: u32,
    /// Changes at each transition: outcomes of calls admitted under an earlier state are ignored.
    generation: u64,
}

struct Host {
    origin: String,
    inner: Mutex<Inner>,
    pending: AtomicUsize,
    openings: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The breakers of every backend host.
pub struct Breakers {
    cfg: BreakerConfig,
    clock: Clock,
    hosts: RwLock<Vec<Arc<Host>>>,
    listener: RwLock<Option<Listener>>,
}

/// A call let through; its end (`finish`, or drop when abandoned) frees its places.
pub struct Permit {
    breakers: Arc<Breakers>,
    host: Arc<Host>,
    generation: u64,
    probe: bool,
    finished: bool,
}

/// One host's state for the metrics and `doctor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostState {
    pub origin: String,
    pub state: BreakerState,
    /// Failures in a row so far (while closed).
    pub failures: u32,
    pub openings: u64,
    pub pending: usize,
}

/// `scheme://host:port` (the default port left out): the breaker's key and the metrics label.
pub fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

impl Breakers {
    /// Breakers for the hosts of `urls` (the configured backend URLs: the metrics' only labels).
    pub fn new<'u>(cfg: BreakerConfig, urls: impl IntoIterator<Item = &'u Url>) -> Breakers {
        Breakers::with_clock(cfg, urls, Arc::new(Instant::now))
    }

    pub fn with_clock<'u>(
        cfg: BreakerConfig,
        urls: impl IntoIterator<Item = &'u Url>,
        clock: Clock,
    ) -> Breakers {
        let b = Breakers {
            cfg,
            clock,
            hosts: RwLock::new(Vec::new()),
            listener: RwLock::new(None),
        };
        for u in urls {
            b.host(&origin(u));
        }
        b
    }

    /// Replaces the transition listener: the audit events' hook (`Service::new`).
    pub fn set_listener(&self, listener: Listener) {
        *self.listener.write().unwrap_or_else(|p| p.into_inner()) = Some(listener);
    }

    /// The host's breaker. Backend calls only go to configured URLs, so hosts stay that few.
    fn host(&self, origin: &str) -> Arc<Host> {
        let read = self.hosts.read().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = read.iter().find(|h| h.origin == origin) {
            return h.clone();
        }
        drop(read);
        let mut write = self.hosts.write().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = write.iter().find(|h| h.origin == origin) {
            return h.clone();
        }
        let h = Arc::new(Host {
            origin: origin.to_string(),
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                failures: 0,
                opened_at: (self.clock)(),
                probes: 0,
                generation: 0,
            }),
            pending: AtomicUsize::new(0),
            openings: AtomicU64::new(0),
        });
        write.push(h.clone());
        h
    }

    fn notify(&self, origin: &str, state: BreakerState) {
        let listener = self
            .listener
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(l) = listener {
            // The listener is someone else's code: its panic must not reach a backend call.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| l(origin, state)));
        }
    }

    /// Open past its cool-down becomes half-open (checked lazily, on use and on reading).
    fn cool(&self, inner: &mut Inner) -> bool {
        if inner.state == BreakerState::Open
            && (self.clock)().saturating_duration_since(inner.opened_at) >= self.cfg.cooldown
        {
            inner.state = BreakerState::HalfOpen;
            inner.probes = 0;
            inner.generation += 1;
            return true;
        }
        false
    }

    /// Lets a call to `url` through, or refuses it at once (`BackendCircuitOpen`).
    pub fn admit(self: &Arc<Self>, url: &Url) -> Result<Permit, AuthError> {
        let host = self.host(&origin(url));
        if host.pending.fetch_add(1, Ordering::SeqCst) >= self.cfg.max_pending {
            host.pending.fetch_sub(1, Ordering::SeqCst);
            return Err(AuthError::BackendCircuitOpen(
                "too many calls to it in flight".into(),
            ));
        }
        let mut permit = Permit {
            breakers: self.clone(),
            host: host.clone(),
            generation: 0,
            probe: false,
            finished: true,
        };
        if self.cfg.failures == 0 {
            permit.finished = false;
            return Ok(permit);
        }
        let mut inner = lock(&host.inner);
        let cooled = self.cool(&mut inner);
        let admitted = match inner.state {
            BreakerState::Closed => true,
            BreakerState::HalfOpen if inner.probes < self.cfg.probes => {
                inner.probes += 1;
                permit.probe = true;
                true
            }
            _ => false,
        };
        permit.generation = inner.generation;
        drop(inner);
        if cooled {
            self.notify(&host.origin, BreakerState::HalfOpen);
        }
        if !admitted {
            // `permit` drops with `finished`: only its pending place is given back.
            return Err(AuthError::BackendCircuitOpen(
                "it failed repeatedly; calls are paused".into(),
            ));
        }
        permit.finished = false;
        Ok(permit)
    }

    /// Every host's state (a cool-down that ended shows as half-open).
    pub fn states(&self) -> Vec<HostState> {
        let hosts = self.hosts.read().unwrap_or_else(|p| p.into_inner()).clone();
        hosts
            .iter()
            .map(|h| {
                let mut inner = lock(&h.inner);
                let cooled = self.cfg.failures > 0 && self.cool(&mut inner);
                let s = HostState {
                    origin: h.origin.clone(),
                    state: inner.state,
                    failures: inner.failures,
                    openings: h.openings.load(Ordering::Relaxed),
                    pending: h.pending.load(Ordering::Relaxed),
                };
                drop(inner);
                if cooled {
                    self.notify(&h.origin, BreakerState::HalfOpen);
                }
                s
            })
            .collect()
    }

    fn settle(&self, p: &Permit, outcome: Outcome) {
        if self.cfg.failures == 0 {
            return;
        }
        let mut inner = lock(&p.host.inner);
        if p.probe && inner.state == BreakerState::HalfOpen && inner.generation == p.generation {
            inner.probes = inner.probes.saturating_sub(1);
        }
        if inner.generation != p.generation {
            return; // admitted under an earlier state: its news is stale
        }
        let next = match (inner.state, outcome) {
            (BreakerState::Closed, Outcome::Answered) => {
                inner.failures = 0;
                None
            }
            (BreakerState::Closed, Outcome::Failed) => {
                inner.failures = inner.failures.saturating_add(1);
                (inner.failures >= self.cfg.failures).then_some(BreakerState::Open)
            }
            (BreakerState::HalfOpen, Outcome::Answered) if p.probe => Some(BreakerState::Closed),
            (BreakerState::HalfOpen, Outcome::Failed) if p.probe => Some(BreakerState::Open),
            _ => None,
        };
        let Some(next) = next else { return };
        inner.state = next;
        inner.failures = 0;
        inner.probes = 0;
        inner.generation += 1;
        if next == BreakerState::Open {
            inner.opened_at = (self.clock)();
            p.host.openings.fetch_add(1, Ordering::Relaxed);
        }
        drop(inner);
        self.notify(&p.host.origin, next);
    }
}

impl Permit {
    /// Records how the call ended.
    pub fn finish(mut self, outcome: Outcome) {
        self.finished = true;
        self.breakers.clone().settle(&self, outcome);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.host.pending.fetch_sub(1, Ordering::SeqCst);
        if !self.finished && self.probe {
            // An abandoned probe (the caller went away) frees its place for another probe.
            let mut inner = lock(&self.host.inner);
            if inner.state == BreakerState::HalfOpen && inner.generation == self.generation {
                inner.probes = inner.probes.saturating_sub(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        now: Arc<Mutex<Instant>>,
        b: Arc<Breakers>,
        url: Url,
        seen: Arc<Mutex<Vec<(String, BreakerState)>>>,
    }

    fn fixture(failures: u32, probes: u32, max_pending: usize) -> Fixture {
        let now = Arc::new(Mutex::new(Instant::now()));
        let clock_now = now.clone();
        let url = Url::parse("https://idp.example.com/api/login?x=1").unwrap();
        let b = Arc::new(Breakers::with_clock(
            BreakerConfig {
                failures,
                cooldown: Duration::from_secs(30),
                probes,
                max_pending,
            },
            [&url],
            Arc::new(move || *lock(&clock_now)),
        ));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        b.set_listener(Arc::new(move |h: &str, s| {
            lock(&log).push((h.to_string(), s))
        }));
        Fixture { now, b, url, seen }
    }

    impl Fixture {
        fn advance(&self, d: Duration) {
            let mut n = lock(&self.now);
            *n += d;
        }
        fn call(&self, outcome: Outcome) -> Result<(), AuthError> {
            self.b.admit(&self.url).map(|p| p.finish(outcome))
        }
        fn state(&self) -> BreakerState {
            self.b.states()[0].state
        }
    }

    #[test]
    fn item_11_3_opens_after_failures_in_a_row_and_an_answer_resets_the_count() {
        let f = fixture(3, 1, 64);
        assert_eq!(f.b.states()[0].origin, "https://idp.example.com");
        f.call(Outcome::Failed).unwrap();
        f.call(Outcome::Failed).unwrap();
        f.call(Outcome::Answered).unwrap(); // not in a row
        f.call(Outcome::Failed).unwrap();
        f.call(Outcome::Failed).unwrap();
        assert_eq!(f.state(), BreakerState::Closed);
        assert_eq!(f.b.states()[0].failures, 2);
        f.call(Outcome::Failed).unwrap();
        assert_eq!(f.state(), BreakerState::Open);
        assert_eq!(
            f.call(Outcome::Answered).unwrap_err().code(),
            "BACKEND_CIRCUIT_OPEN"
        );
        assert_eq!(f.b.states()[0].openings, 1);
        assert_eq!(f.b.states()[0].pending, 0);
        assert_eq!(
            *lock(&f.seen),
            vec![("https://idp.example.com".to_string(), BreakerState::Open)]
        );
    }

    #[test]
    fn item_11_3_half_open_after_the_cool_down_probe_answer_closes_failure_reopens() {
        let f = fixture(1, 1, 64);
        f.call(Outcome::Failed).unwrap();
        f.advance(Duration::from_secs(29));
        assert!(f.call(Outcome::Answered).is_err());
        assert_eq!(f.state(), BreakerState::Open);
        f.advance(Duration::from_secs(1));
        assert_eq!(f.state(), BreakerState::HalfOpen);
        // One probe at a time: the second caller is answered at once.
        let probe = f.b.admit(&f.url).unwrap();
        assert!(f.b.admit(&f.url).is_err());
        probe.finish(Outcome::Failed);
        assert_eq!(f.state(), BreakerState::Open);
        assert_eq!(f.b.states()[0].openings, 2);
        f.advance(Duration::from_secs(30));
        let probe = f.b.admit(&f.url).unwrap();
        probe.finish(Outcome::Answered);
        assert_eq!(f.state(), BreakerState::Closed);
        f.call(Outcome::Answered).unwrap();
        let states: Vec<BreakerState> = lock(&f.seen).iter().map(|(_, s)| *s).collect();
        use BreakerState::*;
        assert_eq!(states, vec![Open, HalfOpen, Open, HalfOpen, Closed]);
    }

    #[test]
    fn item_11_3_an_abandoned_probe_frees_its_place_and_stale_outcomes_are_ignored() {
        let f = fixture(2, 2, 64);
        let slow = f.b.admit(&f.url).unwrap(); // admitted while closed
        f.call(Outcome::Failed).unwrap();
        f.call(Outcome::Failed).unwrap();
        assert_eq!(f.state(), BreakerState::Open);
        slow.finish(Outcome::Answered); // from before the opening: changes nothing
        assert_eq!(f.state(), BreakerState::Open);
        f.advance(Duration::from_secs(30));
        let p1 = f.b.admit(&f.url).unwrap();
        let p2 = f.b.admit(&f.url).unwrap();
        assert!(f.b.admit(&f.url).is_err());
        drop(p1); // the caller went away
        let p3 = f.b.admit(&f.url).unwrap();
        p2.finish(Outcome::Answered);
        assert_eq!(f.state(), BreakerState::Closed);
        p3.finish(Outcome::Failed); // a probe of the half-open state that ended: stale
        assert_eq!(f.state(), BreakerState::Closed);
        assert_eq!(f.b.states()[0].failures, 0);
        assert_eq!(f.b.states()[0].pending, 0);
    }

    #[test]
    fn item_11_3_pending_calls_are_bounded_per_host_also_with_the_breaker_off() {
        for failures in [0, 5] {
            let f = fixture(failures, 1, 2);
            let a = f.b.admit(&f.url).unwrap();
            let _b = f.b.admit(&f.url).unwrap();
            let refused = f.b.admit(&f.url).err().unwrap();
            assert_eq!(refused.code(), "BACKEND_CIRCUIT_OPEN");
            // Another host has its own bound.
            let other = Url::parse("https://other.example.com:8443/x").unwrap();
            let _c = f.b.admit(&other).unwrap();
            drop(a);
            let _d = f.b.admit(&f.url).unwrap();
            assert_eq!(f.b.states().len(), 2);
        }
    }

    #[test]
    fn item_11_3_zero_failures_turns_the_breaker_off() {
        let f = fixture(0, 1, 64);
        for _ in 0..100 {
            f.call(Outcome::Failed).unwrap();
        }
        assert_eq!(f.state(), BreakerState::Closed);
        assert_eq!(f.b.states()[0].openings, 0);
        assert!(lock(&f.seen).is_empty());
    }

    #[test]
    fn item_11_3_only_outages_are_failures_and_a_panicking_listener_is_contained() {
        assert_eq!(
            Outcome::of::<()>(&Err(AuthError::BackendTimeout)),
            Outcome::Failed
        );
        assert_eq!(
            Outcome::of::<()>(&Err(AuthError::BackendUnavailable("x".into()))),
            Outcome::Failed
        );
        for e in [
            AuthError::BackendRateLimited,
            AuthError::BackendBadResponse("x".into()),
            AuthError::InvalidCredentials,
        ] {
            assert_eq!(Outcome::of::<()>(&Err(e)), Outcome::Answered);
        }
        assert_eq!(Outcome::of(&Ok(())), Outcome::Answered);
        let f = fixture(1, 1, 64);
        f.b.set_listener(Arc::new(|_: &str, _| panic!("listener bug")));
        f.call(Outcome::Failed).unwrap();
        assert_eq!(f.state(), BreakerState::Open);
    }

    #[test]
    fn item_11_3_origins_are_scheme_host_and_port() {
        let o = |s: &str| origin(&Url::parse(s).unwrap());
        assert_eq!(
            o("https://idp.example.com:443/a?b=c"),
            "https://idp.example.com"
        );
        assert_eq!(o("http://127.0.0.1:8080/login"), "http://127.0.0.1:8080");
        assert_ne!(o("http://idp:80/a"), o("https://idp/a"));
    }
}
