//! The time and order rules of a refresh, as pure functions so that their edges are unit-tested:
//! the grace window of a superseded token, the lost answer (retried, not reuse), and the window in
//! which a session LibreChat's 2FA step created may claim the backend tokens its login left.

use crate::tokens::librechat::TEMP_TOKEN_SECS;

/// A superseded refresh token of a session (newest first in `StoredSession::generations`).
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    pub hash: String,
    /// When it was last superseded: by its own use, or (`skipped`) by a retry of an older one.
    pub at_ms: i64,
    /// Superseded without ever being used: it was handed out, but the client retried with the
    /// token before it (a lost answer), and the session moved on from there.
    pub skipped: bool,
}

/// Only a session created within the temp token's lifetime (plus a minute) after the login can
/// claim its tokens.
const PENDING_CLAIM_WINDOW_MS: i64 = (TEMP_TOKEN_SECS as i64 + 60) * 1000;
/// ObjectIds carry whole seconds, and servers' clocks differ a little.
const CLOCK_SLACK_MS: i64 = 2_000;

/// Whether a token superseded at `superseded_at_ms` still gets the session's current token at
/// `now_ms`: up to and including `grace_ms` later. A supersession "in the future" (another
/// server's clock ahead of ours) counts as within.
pub fn within_grace(now_ms: i64, superseded_at_ms: i64, grace_ms: i64) -> bool {
    now_ms.saturating_sub(superseded_at_ms) <= grace_ms
}

/// Whether the superseded token at index `i` of `generations` (newest first) is the last token
/// used while no newer one ever was: its refresh's answer never reached the client, so it is
/// refreshed again. Anything else past the grace window is reuse.
pub fn lost_answer(generations: &[Generation], i: usize) -> bool {
    match generations.get(i) {
        Some(g) => !g.skipped && generations[..i].iter().all(|n| n.skipped),
        None => false,
    }
}

/// `claimUntil` of a pending 2FA login made at `created_ms`.
pub fn claim_until(created_ms: i64) -> i64 {
    created_ms.saturating_add(PENDING_CLAIM_WINDOW_MS)
}

/// What a session created at `session_created_ms` (its id's time) may claim: a pending login with
/// `createdAt <= .0` (made before the session, or up to the clock slack after) and
/// `claimUntil >= .1` (whose window was still open when the session was created).
pub fn claim_bounds(session_created_ms: i64) -> (i64, i64) {
    (
        session_created_ms.saturating_add(CLOCK_SLACK_MS),
        session_created_ms,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generation(skipped: bool) -> Generation {
        Generation {
            hash: String::new(),
            at_ms: 0,
            skipped,
        }
    }

    #[test]
    fn item_14_17_grace_window_is_inclusive_at_its_end() {
        let at = 1_700_000_000_000;
        assert!(within_grace(at, at, 10_000));
        assert!(within_grace(at + 10_000, at, 10_000));
        assert!(!within_grace(at + 10_001, at, 10_000));
        // REFRESH_GRACE_MS=0: only the same millisecond.
        assert!(within_grace(at, at, 0));
        assert!(!within_grace(at + 1, at, 0));
        // Superseded by a server whose clock is ahead of ours.
        assert!(within_grace(at - 500, at, 0));
        // No overflow at the ends of the range.
        assert!(!within_grace(i64::MAX, i64::MIN, 86_400_000));
        assert!(within_grace(i64::MIN, i64::MAX, 0));
    }

    #[test]
    fn item_14_17_lost_answer_or_reuse() {
        let (used, skipped) = (generation(false), generation(true));
        // The token before the current one, the current one never used: a lost answer.
        assert!(lost_answer(std::slice::from_ref(&used), 0));
        // Two back while the newer one was used: reuse.
        assert!(!lost_answer(&[used.clone(), used.clone()], 1));
        // Two back, the newer one skipped (handed out, never used): still the last one used.
        assert!(lost_answer(&[skipped.clone(), used.clone()], 1));
        assert!(lost_answer(
            &[skipped.clone(), skipped.clone(), used.clone()],
            2
        ));
        assert!(!lost_answer(
            &[skipped.clone(), used.clone(), used.clone()],
            2
        ));
        // A skipped token itself is reuse, wherever it is.
        assert!(!lost_answer(std::slice::from_ref(&skipped), 0));
        assert!(!lost_answer(&[skipped.clone(), skipped.clone()], 1));
        // Not a remembered generation.
        assert!(!lost_answer(&[used], 1));
        assert!(!lost_answer(&[], 0));
    }

    /// The claim filter of `Sessions::claim_pending`: `createdAt $lte`, `claimUntil $gte`.
    fn claimable(pending_created_ms: i64, session_created_ms: i64) -> bool {
        let (created_at_most, claim_until_at_least) = claim_bounds(session_created_ms);
        pending_created_ms <= created_at_most
            && claim_until(pending_created_ms) >= claim_until_at_least
    }

    #[test]
    fn item_14_17_two_factor_claim_window_edges() {
        let session = 1_700_000_000_000;
        // The usual case: the login a few seconds before the session.
        assert!(claimable(session - 3_000, session));
        // The "2 s after" edge: a login stamped up to 2 s after the session (whole-second
        // ObjectIds, clocks of two servers) is still its login; later it is not.
        assert!(claimable(session + 2_000, session));
        assert!(!claimable(session + 2_001, session));
        // 6 minutes before (the temp token's 5, and one to spare), and not a millisecond more.
        assert!(claimable(session - 360_000, session));
        assert!(!claimable(session - 360_001, session));
        assert_eq!(claim_until(session), session + 360_000);
        assert_eq!(claim_until(i64::MAX), i64::MAX);
        assert_eq!(claim_bounds(i64::MAX), (i64::MAX, i64::MAX));
    }
}
