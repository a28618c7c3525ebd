//! The circuit breaker in front of the backend. Per backend host (scheme, host and port of the
//! configured URLs), its calls are split into lanes by whose input they carry, and each lane has its
//! own failure count, state, cool-down, probes and bound on calls in flight, so that input anyone can
//! send cannot stop the calls of users the backend already accepted (docs/sessions-and-tokens.md,
//! "Backend circuit breaker"):
//!
//! - `login`: logins, whoever types the credentials;
//! - `token`: user info and introspection of a bearer token the service has not seen valid;
//! - `session`: refresh, logout, and user info for a login or refresh the backend just accepted;
//! - `keys`: the JWKS key set, the service's own call.
//!
//! A lane opens after `failures` failures in a row (timeouts, connection errors, 5xx) with no answer
//! from the host in between, in any lane: while anything from the host answers, failures are about
//! their input, not an outage. A host that cannot be reached (the connection fails) counts in every
//! lane, since no input causes that. An open lane refuses its calls at once for `cooldown`, then lets
//! at most `probes` calls through at a time (half-open): a probe that gets an answer closes it, one
//! that fails opens it for another cool-down. Real traffic probes sooner: while the login lane is
//! open, the login of a user name that signed in through this service before is let through as a
//! probe (at most `probes` at a time), and its answer closes the lane. LibreChat tokens never come
//! here (only backend calls do).
//!
//! Each lane also bounds its calls in flight (`max_pending`). A call beyond it waits for a place,
//! first come first served, up to `queue_wait` (`BACKEND_TIMEOUT_MS`), so that a burst of logins is
//! served rather than refused; when `MAX_WAITING_PER_PLACE` times as many calls already wait, or
//! the wait ends without a place, it is refused (`BackendCircuitOpen`).

use std::collections::hash_map::RandomState;
use std::collections::{HashSet, VecDeque};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
#[cfg(test)]
use std::time::Duration;
use std::time::Instant;

use tokio::sync::Notify;

use reqwest::Url;

use crate::config::BreakerConfig;
use crate::shared::error::AuthError;

/// The state of one lane; the number is the metrics gauge's value.
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

/// Which failure budget a backend call spends: by whose input it carries (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Login = 0,
    Token = 1,
    Session = 2,
    Keys = 3,
}

/// Every lane, in the order of `Lane`'s values.
pub const LANES: [Lane; 4] = [Lane::Login, Lane::Token, Lane::Session, Lane::Keys];

impl Lane {
    /// The metrics label and the audit events' `lane`.
    pub fn name(self) -> &'static str {
        match self {
            Lane::Login => "login",
            Lane::Token => "token",
            Lane::Session => "session",
            Lane::Keys => "keys",
        }
    }
}

/// Told of every transition (host, lane, new state), outside any lock. For the audit events.
pub type Listener = Arc<dyn Fn(&str, Lane, BreakerState) + Send + Sync>;

/// The clock, injected so that the state machine is tested without sleeping.
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// How a call admitted by the breaker ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The backend answered (2xx, 4xx, 429, an unusable body): it is up.
    Answered,
    /// A 5xx, or no answer in time on an open connection: may be about this call's input.
    Failed,
    /// The connection could not be made (refused, unresolvable, TLS, connect timeout): the host
    /// is down for every caller.
    Unreachable,
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
    /// The host's answer count when the run of failures began: another answer since ends the run.
    streak_answers: u64,
    /// When it last opened (the cool-down's start).
    opened_at: Instant,
    /// Probes in flight (half-open, or real-traffic probes while open).
    probes: u32,
    /// Changes at each transition: outcomes of calls admitted under an earlier state are ignored.
    generation: u64,
}

/// Calls that may wait for a place, per place (`max_pending`): a hanging backend then holds at
/// most this many more requests per lane, each for at most `queue_wait`.
const MAX_WAITING_PER_PLACE: usize = 4;

struct LaneState {
    inner: Mutex<Inner>,
    pending: AtomicUsize,
    /// Calls waiting for a place, and the signal that one was freed (one waiter woken per place).
    waiting: AtomicUsize,
    freed: Notify,
    openings: AtomicU64,
}

impl LaneState {
    /// Takes a place for a call in flight, if one is free.
    fn reserve(&self, max_pending: usize) -> bool {
        if self.pending.fetch_add(1, Ordering::SeqCst) >= max_pending {
            self.pending.fetch_sub(1, Ordering::SeqCst);
            return false;
        }
        true
    }
}

/// One call counted as waiting for a place while it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn no_place() -> AuthError {
    AuthError::BackendCircuitOpen("too many calls to it in flight".into())
}

struct Host {
    origin: String,
    lanes: [LaneState; 4],
    /// Calls the host answered, in any lane.
    answers: AtomicU64,
}

impl Host {
    fn lane(&self, lane: Lane) -> &LaneState {
        &self.lanes[lane as usize]
    }
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
    lane: Lane,
    generation: u64,
    probe: bool,
    finished: bool,
    /// It waited for a place (`admit_waiting`): its call has less than `queue_wait` left.
    waited: bool,
}

/// One lane's state for the metrics and `doctor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostState {
    pub origin: String,
    pub lane: Lane,
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
        let now = (self.clock)();
        let lane = || LaneState {
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                failures: 0,
                streak_answers: 0,
                opened_at: now,
                probes: 0,
                generation: 0,
            }),
            pending: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            freed: Notify::new(),
            openings: AtomicU64::new(0),
        };
        let h = Arc::new(Host {
            origin: origin.to_string(),
            lanes: [lane(), lane(), lane(), lane()],
            answers: AtomicU64::new(0),
        });
        write.push(h.clone());
        h
    }

    fn notify(&self, origin: &str, lane: Lane, state: BreakerState) {
        let listener = self
            .listener
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(l) = listener {
            // The listener is someone else's code: its panic must not reach a backend call.
            let _ =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| l(origin, lane, state)));
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

    /// Lets a call to `url` in `lane` through, or refuses it at once (`BackendCircuitOpen`).
    /// `vouched`: its input was good before (a user name that signed in), so it may probe an open
    /// lane before the cool-down ends.
    pub fn admit(
        self: &Arc<Self>,
        url: &Url,
        lane: Lane,
        vouched: bool,
    ) -> Result<Permit, AuthError> {
        let host = self.host(&origin(url));
        if !host.lane(lane).reserve(self.cfg.max_pending) {
            return Err(no_place());
        }
        self.admit_reserved(host, lane, vouched)
    }

    /// As `admit`, but a call that finds every place of its lane taken waits for one (module docs).
    pub async fn admit_waiting(
        self: &Arc<Self>,
        url: &Url,
        lane: Lane,
        vouched: bool,
    ) -> Result<Permit, AuthError> {
        let host = self.host(&origin(url));
        let ls = host.lane(lane);
        let waited = !ls.reserve(self.cfg.max_pending);
        if waited {
            let max_waiting = self.cfg.max_pending.saturating_mul(MAX_WAITING_PER_PLACE);
            if ls.waiting.fetch_add(1, Ordering::SeqCst) >= max_waiting {
                ls.waiting.fetch_sub(1, Ordering::SeqCst);
                return Err(no_place());
            }
            let _waiting = Waiting(&ls.waiting);
            let deadline = tokio::time::Instant::now() + self.cfg.queue_wait;
            loop {
                // Registered before the place is looked for again, so a place freed in between
                // is not missed.
                let freed = ls.freed.notified();
                tokio::pin!(freed);
                freed.as_mut().enable();
                if ls.reserve(self.cfg.max_pending) {
                    break;
                }
                if tokio::time::timeout_at(deadline, freed).await.is_err() {
                    // A wake-up this call may have taken as it timed out goes to the next one.
                    ls.freed.notify_one();
                    return Err(no_place());
                }
            }
        }
        let mut permit = self.admit_reserved(host.clone(), lane, vouched)?;
        permit.waited = waited;
        Ok(permit)
    }

    /// The breaker's decision on a call that holds a place in flight.
    fn admit_reserved(
        self: &Arc<Self>,
        host: Arc<Host>,
        lane: Lane,
        vouched: bool,
    ) -> Result<Permit, AuthError> {
        let ls = host.lane(lane);
        let mut permit = Permit {
            breakers: self.clone(),
            host: host.clone(),
            lane,
            generation: 0,
            probe: false,
            finished: true,
            waited: false,
        };
        if self.cfg.failures == 0 {
            permit.finished = false;
            return Ok(permit);
        }
        let mut inner = lock(&ls.inner);
        let cooled = self.cool(&mut inner);
        let admitted = match inner.state {
            BreakerState::Closed => true,
            BreakerState::HalfOpen if inner.probes < self.cfg.probes => true,
            BreakerState::Open if vouched && inner.probes < self.cfg.probes => true,
            _ => false,
        };
        if admitted && inner.state != BreakerState::Closed {
            inner.probes += 1;
            permit.probe = true;
        }
        permit.generation = inner.generation;
        drop(inner);
        if cooled {
            self.notify(&host.origin, lane, BreakerState::HalfOpen);
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

    /// Every lane's state, host by host (a cool-down that ended shows as half-open).
    pub fn states(&self) -> Vec<HostState> {
        let hosts = self.hosts.read().unwrap_or_else(|p| p.into_inner()).clone();
        let mut out = Vec::with_capacity(hosts.len() * LANES.len());
        for h in &hosts {
            for lane in LANES {
                let ls = h.lane(lane);
                let mut inner = lock(&ls.inner);
                let cooled = self.cfg.failures > 0 && self.cool(&mut inner);
                out.push(HostState {
                    origin: h.origin.clone(),
                    lane,
                    state: inner.state,
                    failures: inner.failures,
                    openings: ls.openings.load(Ordering::Relaxed),
                    pending: ls.pending.load(Ordering::Relaxed),
                });
                drop(inner);
                if cooled {
                    self.notify(&h.origin, lane, BreakerState::HalfOpen);
                }
            }
        }
        out
    }

    fn settle(&self, p: &Permit, outcome: Outcome) {
        if self.cfg.failures == 0 {
            return;
        }
        if outcome == Outcome::Answered {
            p.host.answers.fetch_add(1, Ordering::SeqCst);
        }
        let mut changed = Vec::new();
        if let Some(next) = self.settle_lane(&p.host, p.lane, Some(p), outcome) {
            changed.push((p.lane, next));
        }
        if outcome == Outcome::Unreachable {
            // No input makes a host unreachable: every lane of it counts the failure.
            for lane in LANES.into_iter().filter(|l| *l != p.lane) {
                if let Some(next) = self.settle_lane(&p.host, lane, None, outcome) {
                    changed.push((lane, next));
                }
            }
        }
        for (lane, next) in changed {
            self.notify(&p.host.origin, lane, next);
        }
    }

    /// One lane's bookkeeping for an outcome: of its own call (`permit`), or of another lane's
    /// unreachable host. The transition it made, if any.
    fn settle_lane(
        &self,
        host: &Host,
        lane: Lane,
        permit: Option<&Permit>,
        outcome: Outcome,
    ) -> Option<BreakerState> {
        let ls = host.lane(lane);
        let mut inner = lock(&ls.inner);
        let probe = permit.is_some_and(|p| p.probe);
        if let Some(p) = permit {
            if inner.generation != p.generation {
                return None; // admitted under an earlier state: its news is stale
            }
            if probe {
                inner.probes = inner.probes.saturating_sub(1);
            }
        }
        let failed = outcome != Outcome::Answered;
        let next = match (inner.state, failed) {
            (BreakerState::Closed, false) => {
                inner.failures = 0;
                None
            }
            (BreakerState::Closed, true) => {
                let answers = host.answers.load(Ordering::SeqCst);
                if inner.streak_answers != answers {
                    // The host answered since this run of failures began: a new run.
                    inner.streak_answers = answers;
                    inner.failures = 0;
                }
                inner.failures = inner.failures.saturating_add(1);
                (inner.failures >= self.cfg.failures).then_some(BreakerState::Open)
            }
            (BreakerState::HalfOpen | BreakerState::Open, false) if probe => {
                Some(BreakerState::Closed)
            }
            (BreakerState::HalfOpen, true) if probe => Some(BreakerState::Open),
            (BreakerState::Open, true) if probe => {
                // A real-traffic probe failed: still open, the cool-down starts again.
                inner.opened_at = (self.clock)();
                None
            }
            _ => None,
        };
        let next = next?;
        inner.state = next;
        inner.failures = 0;
        inner.probes = 0;
        inner.generation += 1;
        if next == BreakerState::Open {
            inner.opened_at = (self.clock)();
            ls.openings.fetch_add(1, Ordering::Relaxed);
        }
        Some(next)
    }
}

impl Permit {
    /// Records how the call ended.
    /// Whether the call waited for a place before it was let through.
    pub fn waited(&self) -> bool {
        self.waited
    }

    pub fn finish(mut self, outcome: Outcome) {
        self.finished = true;
        self.breakers.clone().settle(&self, outcome);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let ls = self.host.lane(self.lane);
        ls.pending.fetch_sub(1, Ordering::SeqCst);
        ls.freed.notify_one();
        if !self.finished && self.probe {
            // An abandoned probe (the caller went away) frees its place for another probe.
            let mut inner = lock(&ls.inner);
            if inner.state != BreakerState::Closed && inner.generation == self.generation {
                inner.probes = inner.probes.saturating_sub(1);
            }
        }
    }
}

/// User names that signed in through this service: their logins may probe an open login lane.
/// Kept as keyed hashes (no names in memory), the oldest forgotten past `KNOWN_NAMES`.
pub struct KnownNames {
    hasher: RandomState,
    seen: Mutex<(HashSet<u64>, VecDeque<u64>)>,
}

/// Enough for every user of a large organisation; 16 bytes each at most.
const KNOWN_NAMES: usize = 100_000;

impl Default for KnownNames {
    fn default() -> Self {
        KnownNames {
            hasher: RandomState::new(),
            seen: Mutex::new((HashSet::new(), VecDeque::new())),
        }
    }
}

impl KnownNames {
    fn key(&self, name: &str) -> u64 {
        self.hasher.hash_one(name.to_lowercase())
    }

    pub fn contains(&self, name: &str) -> bool {
        let key = self.key(name);
        lock(&self.seen).0.contains(&key)
    }

    pub fn insert(&self, name: &str) {
        let key = self.key(name);
        let mut seen = lock(&self.seen);
        let (set, order) = &mut *seen;
        if set.insert(key) {
            order.push_back(key);
            if order.len() > KNOWN_NAMES {
                if let Some(old) = order.pop_front() {
                    set.remove(&old);
                }
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
        seen: Arc<Mutex<Vec<(String, Lane, BreakerState)>>>,
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
                queue_wait: Duration::from_millis(300),
            },
            [&url],
            Arc::new(move || *lock(&clock_now)),
        ));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        b.set_listener(Arc::new(move |h: &str, lane, s| {
            lock(&log).push((h.to_string(), lane, s))
        }));
        Fixture { now, b, url, seen }
    }

    impl Fixture {
        fn advance(&self, d: Duration) {
            let mut n = lock(&self.now);
            *n += d;
        }
        fn admit(&self, lane: Lane) -> Result<Permit, AuthError> {
            self.b.admit(&self.url, lane, false)
        }
        fn call_in(&self, lane: Lane, outcome: Outcome) -> Result<(), AuthError> {
            self.admit(lane).map(|p| p.finish(outcome))
        }
        fn call(&self, outcome: Outcome) -> Result<(), AuthError> {
            self.call_in(Lane::Login, outcome)
        }
        fn lane(&self, lane: Lane) -> HostState {
            self.b.states()[lane as usize].clone()
        }
        fn state_of(&self, lane: Lane) -> BreakerState {
            self.lane(lane).state
        }
        fn state(&self) -> BreakerState {
            self.state_of(Lane::Login)
        }
        fn transitions(&self) -> Vec<(Lane, BreakerState)> {
            lock(&self.seen).iter().map(|(_, l, s)| (*l, *s)).collect()
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
        assert_eq!(f.lane(Lane::Login).failures, 2);
        f.call(Outcome::Failed).unwrap();
        assert_eq!(f.state(), BreakerState::Open);
        assert_eq!(
            f.call(Outcome::Answered).unwrap_err().code(),
            "BACKEND_CIRCUIT_OPEN"
        );
        assert_eq!(f.lane(Lane::Login).openings, 1);
        assert_eq!(f.lane(Lane::Login).pending, 0);
        assert_eq!(
            *lock(&f.seen),
            vec![(
                "https://idp.example.com".to_string(),
                Lane::Login,
                BreakerState::Open
            )]
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
        let probe = f.admit(Lane::Login).unwrap();
        assert!(f.admit(Lane::Login).is_err());
        probe.finish(Outcome::Failed);
        assert_eq!(f.state(), BreakerState::Open);
        assert_eq!(f.lane(Lane::Login).openings, 2);
        f.advance(Duration::from_secs(30));
        let probe = f.admit(Lane::Login).unwrap();
        probe.finish(Outcome::Answered);
        assert_eq!(f.state(), BreakerState::Closed);
        f.call(Outcome::Answered).unwrap();
        use BreakerState::*;
        let states: Vec<BreakerState> = f.transitions().into_iter().map(|(_, s)| s).collect();
        assert_eq!(states, vec![Open, HalfOpen, Open, HalfOpen, Closed]);
    }

    #[test]
    fn item_11_3_an_abandoned_probe_frees_its_place_and_stale_outcomes_are_ignored() {
        let f = fixture(2, 2, 64);
        let slow = f.admit(Lane::Login).unwrap(); // admitted while closed
        f.call(Outcome::Failed).unwrap();
        f.call(Outcome::Failed).unwrap();
        assert_eq!(f.state(), BreakerState::Open);
        slow.finish(Outcome::Answered); // from before the opening: changes nothing
        assert_eq!(f.state(), BreakerState::Open);
        f.advance(Duration::from_secs(30));
        let p1 = f.admit(Lane::Login).unwrap();
        let p2 = f.admit(Lane::Login).unwrap();
        assert!(f.admit(Lane::Login).is_err());
        drop(p1); // the caller went away
        let p3 = f.admit(Lane::Login).unwrap();
        p2.finish(Outcome::Answered);
        assert_eq!(f.state(), BreakerState::Closed);
        p3.finish(Outcome::Failed); // a probe of the half-open state that ended: stale
        assert_eq!(f.state(), BreakerState::Closed);
        assert_eq!(f.lane(Lane::Login).failures, 0);
        assert_eq!(f.lane(Lane::Login).pending, 0);
    }

    #[test]
    fn item_11_3_pending_calls_are_bounded_per_host_and_lane_also_with_the_breaker_off() {
        for failures in [0, 5] {
            let f = fixture(failures, 1, 2);
            let a = f.admit(Lane::Login).unwrap();
            let _b = f.admit(Lane::Login).unwrap();
            let refused = f.admit(Lane::Login).err().unwrap();
            assert_eq!(refused.code(), "BACKEND_CIRCUIT_OPEN");
            // Another lane and another host have bounds of their own.
            let _s = f.admit(Lane::Session).unwrap();
            let other = Url::parse("https://other.example.com:8443/x").unwrap();
            let _c = f.b.admit(&other, Lane::Login, false).unwrap();
            drop(a);
            let _d = f.admit(Lane::Login).unwrap();
            assert_eq!(f.b.states().len(), 2 * LANES.len());
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn item_21_11f_a_call_beyond_the_bound_waits_for_a_place_up_to_queue_wait() {
        let f = fixture(5, 1, 1);
        let held = f.b.admit_waiting(&f.url, Lane::Login, false).await.unwrap();
        // A place freed while it waits: the waiting call gets it.
        let b = f.b.clone();
        let url = f.url.clone();
        let waiter =
            tokio::spawn(
                async move { b.admit_waiting(&url, Lane::Login, false).await.map(|_| ()) },
            );
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "it waits");
        drop(held);
        assert!(waiter.await.unwrap().is_ok());
        // No place within queue_wait (300 ms here): refused.
        let _held = f.b.admit_waiting(&f.url, Lane::Login, false).await.unwrap();
        let started = Instant::now();
        let refused =
            f.b.admit_waiting(&f.url, Lane::Login, false)
                .await
                .err()
                .unwrap();
        assert_eq!(refused.code(), "BACKEND_CIRCUIT_OPEN");
        assert!(started.elapsed() >= Duration::from_millis(300));
        // At most 4 waiting per place: the fifth is refused at once.
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let (b, url) = (f.b.clone(), f.url.clone());
                tokio::spawn(async move { b.admit_waiting(&url, Lane::Login, false).await.is_ok() })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let started = Instant::now();
        assert!(f.b.admit_waiting(&f.url, Lane::Login, false).await.is_err());
        assert!(started.elapsed() < Duration::from_millis(300));
        for w in waiters {
            assert!(!w.await.unwrap(), "no place came free");
        }
    }

    #[test]
    fn item_11_3_zero_failures_turns_the_breaker_off() {
        let f = fixture(0, 1, 64);
        for _ in 0..100 {
            f.call(Outcome::Failed).unwrap();
            f.call(Outcome::Unreachable).unwrap();
        }
        assert_eq!(f.state(), BreakerState::Closed);
        assert_eq!(f.lane(Lane::Login).openings, 0);
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
        f.b.set_listener(Arc::new(|_: &str, _, _| panic!("listener bug")));
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

    #[test]
    fn item_21_1_failures_of_unverified_tokens_never_open_the_login_or_session_lanes() {
        let f = fixture(5, 1, 64);
        for _ in 0..50 {
            let _ = f.call_in(Lane::Token, Outcome::Failed);
        }
        assert_eq!(f.state_of(Lane::Token), BreakerState::Open);
        assert_eq!(f.state_of(Lane::Login), BreakerState::Closed);
        assert_eq!(f.state_of(Lane::Session), BreakerState::Closed);
        assert_eq!(f.state_of(Lane::Keys), BreakerState::Closed);
        f.call(Outcome::Answered).unwrap();
        f.call_in(Lane::Session, Outcome::Answered).unwrap();
        assert_eq!(f.transitions(), vec![(Lane::Token, BreakerState::Open)]);
    }

    #[test]
    fn item_21_1_while_the_host_answers_failures_in_a_row_are_about_their_input() {
        let f = fixture(5, 1, 64);
        // 4 slow logins, a real user's answered refresh, 4 more, another answer: never 5 in a row
        // without an answer from the host.
        for _ in 0..10 {
            for _ in 0..4 {
                f.call(Outcome::Failed).unwrap();
            }
            f.call_in(Lane::Session, Outcome::Answered).unwrap();
        }
        assert_eq!(f.state(), BreakerState::Closed);
        assert_eq!(f.lane(Lane::Login).openings, 0);
        // Five at once with nothing answered in between is an outage of the login endpoint.
        let burst: Vec<Permit> = (0..5).map(|_| f.admit(Lane::Login).unwrap()).collect();
        for p in burst {
            p.finish(Outcome::Failed);
        }
        assert_eq!(f.state(), BreakerState::Open);
    }

    #[test]
    fn item_21_1_a_host_that_cannot_be_reached_opens_every_lane_as_fast_as_before() {
        let f = fixture(5, 1, 64);
        for lane in [Lane::Token, Lane::Login, Lane::Token, Lane::Keys] {
            f.call_in(lane, Outcome::Unreachable).unwrap();
        }
        for lane in LANES {
            assert_eq!(f.state_of(lane), BreakerState::Closed, "{lane:?}");
        }
        f.call_in(Lane::Token, Outcome::Unreachable).unwrap(); // the fifth
        for lane in LANES {
            assert_eq!(f.state_of(lane), BreakerState::Open, "{lane:?}");
            assert!(f.call_in(lane, Outcome::Answered).is_err());
        }
        // 5xx of one lane's calls, in contrast, stay in that lane.
        let g = fixture(5, 1, 64);
        for _ in 0..5 {
            g.call_in(Lane::Session, Outcome::Failed).unwrap();
        }
        assert_eq!(g.state_of(Lane::Session), BreakerState::Open);
        assert_eq!(g.state_of(Lane::Login), BreakerState::Closed);
    }

    #[test]
    fn item_21_1_a_known_users_login_probes_an_open_login_lane_and_closes_it() {
        let f = fixture(3, 1, 64);
        for _ in 0..3 {
            f.call(Outcome::Failed).unwrap();
        }
        assert_eq!(f.state(), BreakerState::Open);
        // An unknown name waits for the cool-down; a known one probes at once, one at a time.
        assert!(f.b.admit(&f.url, Lane::Login, false).is_err());
        let probe = f.b.admit(&f.url, Lane::Login, true).unwrap();
        assert!(f.b.admit(&f.url, Lane::Login, true).is_err());
        probe.finish(Outcome::Failed);
        // Its failure keeps the lane open and starts the cool-down again (not another opening).
        assert_eq!(f.state(), BreakerState::Open);
        assert_eq!(f.lane(Lane::Login).openings, 1);
        f.advance(Duration::from_secs(29));
        assert_eq!(f.state(), BreakerState::Open);
        let probe = f.b.admit(&f.url, Lane::Login, true).unwrap();
        probe.finish(Outcome::Answered);
        assert_eq!(f.state(), BreakerState::Closed);
        f.b.admit(&f.url, Lane::Login, false)
            .unwrap()
            .finish(Outcome::Answered);
        assert_eq!(
            f.transitions(),
            vec![
                (Lane::Login, BreakerState::Open),
                (Lane::Login, BreakerState::Closed)
            ]
        );
    }

    #[test]
    fn item_21_1_known_names_are_case_blind_and_bounded() {
        let k = KnownNames::default();
        assert!(!k.contains("Alice"));
        k.insert("Alice");
        assert!(k.contains("alice"));
        assert!(!k.contains("alice2"));
        for i in 0..KNOWN_NAMES {
            k.insert(&format!("user-{i}"));
        }
        assert!(!k.contains("alice")); // the oldest went first
        assert!(k.contains(&format!("user-{}", KNOWN_NAMES - 1)));
        assert_eq!(lock(&k.seen).0.len(), KNOWN_NAMES);
    }
}
