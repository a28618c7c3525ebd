//! The backend's own second factor through LibreChat's 2FA screen (docs/second-factor.md): a login
//! the backend answers with a challenge gets LibreChat's `{twoFAPending, tempToken}`, the temp token
//! naming a sealed record of the challenge; the code typed into LibreChat's 2FA page goes to the
//! backend, whose yes starts the session as any login does.

use std::time::Duration;

use mongodb::bson::oid::ObjectId;

use crate::backend::client::{Challenge, MfaVerdict};
use crate::flows::login::LoginOutcome;
use crate::flows::service::Service;
use crate::shared::error::{AuthError, AuthResult};
use crate::store::challenges::Attempt;
use crate::tokens::librechat::{now_secs, TempToken};

/// A code longer than this is not sent anywhere (codes are a few digits or words).
const MAX_CODE_CHARS: usize = 64;

/// What a code posted to LibreChat's 2FA route did.
pub enum VerifyOutcome {
    /// The temp token is not a backend challenge's: LibreChat's own 2FA answers it.
    NotOurs,
    Session(LoginOutcome),
    /// The backend says no; the challenge stays usable while attempts remain.
    WrongCode,
    /// Used, expired, or unknown: the user logs in again.
    Expired,
    /// Every allowed code was tried (`BACKEND_MFA_MAX_ATTEMPTS`): the challenge is void.
    Exhausted,
}

/// A form field with something in it.
fn present(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

impl Service {
    /// A login the backend answered with a challenge: kept (sealed) until the backend's expiry or
    /// `BACKEND_MFA_TTL`, whichever comes first; LibreChat's 2FA screen gets a temp token naming it.
    pub(crate) async fn challenge(
        &self,
        c: Challenge,
        tenant: Option<&str>,
    ) -> AuthResult<LoginOutcome> {
        let Some(m) = &self.config.mfa else {
            return Err(AuthError::Internal(
                "a challenge without BACKEND_MFA_VERIFY_URL".into(),
            ));
        };
        let ttl = c
            .expires_in_secs
            .map_or(m.ttl, |s| m.ttl.min(Duration::from_secs(s)));
        let exp = now_secs().saturating_add(ttl.as_secs());
        let ms = i64::try_from(exp.saturating_mul(1000)).unwrap_or(i64::MAX);
        let db = self.db().await?;
        let record = db.challenges.stash(&c.id, tenant, ms).await?;
        Ok(LoginOutcome::BackendChallenge {
            temp_token: self.tokens.challenge_temp_token(&record.to_hex(), exp)?,
            record,
        })
    }

    /// `POST /api/auth/2fa/verify-temp` with `{tempToken, token}` or `{tempToken, backupCode}`:
    /// the code goes to the backend when the temp token is a backend challenge's.
    pub async fn verify_challenge(
        &self,
        temp_token: &str,
        code: Option<&str>,
        backup_code: Option<&str>,
        tenant: Option<&str>,
    ) -> AuthResult<VerifyOutcome> {
        let record = match self.tokens.temp_token(temp_token) {
            TempToken::Other => return Ok(VerifyOutcome::NotOurs),
            TempToken::Expired => return Ok(VerifyOutcome::Expired),
            TempToken::Challenge(id) => id,
        };
        let (Some(m), Ok(record)) = (&self.config.mfa, ObjectId::parse_str(&record)) else {
            return Ok(VerifyOutcome::Expired);
        };
        let (code, backup) = match (present(code), present(backup_code)) {
            (_, Some(b)) => (b, true),
            (Some(c), None) => (c, false),
            (None, None) => return Ok(VerifyOutcome::WrongCode),
        };
        if code.chars().count() > MAX_CODE_CHARS || (backup && !m.backup_codes) {
            return Ok(VerifyOutcome::WrongCode);
        }
        let db = self.db().await?;
        let open = match db.challenges.attempt(record, m.max_attempts).await? {
            Attempt::Open(o) => o,
            Attempt::Exhausted => return Ok(VerifyOutcome::Exhausted),
            Attempt::Gone => return Ok(VerifyOutcome::Expired),
        };
        if tenant.is_some() && open.tenant.as_deref() != tenant {
            return Err(AuthError::TenantMismatch(
                "this login belongs to another tenant".into(),
            ));
        }
        match self.backend.mfa_verify(&open.challenge, code, backup).await {
            Err(e) => {
                // Not judged: the attempt is given back (the record stays for the retry).
                let _ = db.challenges.refund(record).await;
                Err(e)
            }
            Ok(MfaVerdict::Wrong) => Ok(VerifyOutcome::WrongCode),
            Ok(MfaVerdict::Gone) => {
                db.challenges.end(record).await?;
                Ok(VerifyOutcome::Expired)
            }
            Ok(MfaVerdict::Passed(answer)) => {
                // Single use: the temp token names nothing any more.
                db.challenges.end(record).await?;
                self.open_session(*answer, open.tenant.as_deref(), true)
                    .await
                    .map(VerifyOutcome::Session)
            }
        }
    }
}
