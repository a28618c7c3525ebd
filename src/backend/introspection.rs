//! The verdict on an RFC 7662 introspection answer: `active`, then the checks a security team
//! expects of it (`exp`, `nbf`, `iss`, `aud`, scopes, not a refresh token), then the identity
//! through the same field mapping as JWKS claims. The call itself is `Backend::introspect`; caching,
//! single-flight and the call budget are the bearer check's (`bearer.rs`).

use serde_json::Value;

use crate::backend::claims::{identity_from_claims, Verdict};
use crate::config::{IntrospectionConfig, Mapping};
use crate::shared::error::{AuthError, AuthResult};
use crate::tokens::librechat::expired;

/// What the common servers write into an introspection answer to say which kind of token it is,
/// and the values that mean another kind than an access token (compared in any case):
/// RFC 7662's `token_type` (ORY Hydra `refresh_token`, token-exchange URNs), Keycloak's `typ`
/// (`Refresh`, `Offline`, `ID`, `Logout`), Cognito-style and Hydra `token_use` (`id`, `refresh`,
/// `refresh_token`). `token_use` names the access token `access` or `access_token`, nothing else.
const NOT_ACCESS: &[(&str, &[&str])] = &[
    (
        "token_type",
        &[
            "refresh_token",
            "refresh",
            "id_token",
            "urn:ietf:params:oauth:token-type:refresh_token",
            "urn:ietf:params:oauth:token-type:id_token",
        ],
    ),
    (
        "typ",
        &[
            "refresh",
            "offline",
            "id",
            "logout",
            "refresh_token",
            "id_token",
        ],
    ),
];

/// Why the answer is not an access token's, if it is not: a marking of another kind, a
/// `token_use` other than access, or (`required` set) a `token_type` other than that one.
fn not_access(answer: &Value, required: Option<&str>) -> Option<&'static str> {
    let field = |k: &str| answer.get(k).and_then(Value::as_str).map(str::trim);
    for (key, others) in NOT_ACCESS {
        if field(key).is_some_and(|v| others.iter().any(|o| o.eq_ignore_ascii_case(v))) {
            return Some("not an access token");
        }
    }
    if let Some(usage) = answer.get("token_use") {
        let access = usage.as_str().is_some_and(|u| {
            u.eq_ignore_ascii_case("access") || u.eq_ignore_ascii_case("access_token")
        });
        if !access {
            return Some("not an access token");
        }
    }
    match required {
        Some(want) if !field("token_type").is_some_and(|t| t.eq_ignore_ascii_case(want)) => {
            Some("not an access token (token_type)")
        }
        _ => None,
    }
}

/// The verdict on `answer` at `now` (seconds), and the token's `exp` when the answer gives one (it
/// bounds how long the verdict is cached). An answer without a boolean `active` is not an
/// introspection answer: a bad response (503, not cached), never a guess either way.
pub fn judge(
    answer: &Value,
    cfg: &IntrospectionConfig,
    mapping: &Mapping,
    now: u64,
) -> AuthResult<(Verdict, Option<u64>)> {
    let refused = |why: &str| Ok((Verdict::Refused(why.into()), None));
    let Some(active) = answer.get("active").and_then(Value::as_bool) else {
        return Err(AuthError::BackendBadResponse(
            "introspection answer has no boolean `active`".into(),
        ));
    };
    if !active {
        return refused("the backend reports the token inactive");
    }
    // Servers introspect refresh and ID tokens as active too: they are not for API requests.
    if let Some(why) = not_access(answer, cfg.token_type.as_deref()) {
        return refused(why);
    }
    let exp = match answer.get("exp").filter(|v| !v.is_null()) {
        None => None,
        Some(v) => match v.as_f64().filter(|e| e.is_finite() && *e >= 0.0) {
            Some(e) if expired(e, now) => return refused("token expired"),
            Some(e) => Some(e as u64),
            None => return refused("invalid exp"),
        },
    };
    match answer
        .get("nbf")
        .filter(|v| !v.is_null())
        .map(Value::as_f64)
    {
        None => {}
        Some(Some(nbf)) if now as f64 >= nbf => {}
        Some(_) => return refused("token not valid yet"),
    }
    if let Some(issuer) = &cfg.issuer {
        if answer.get("iss").and_then(Value::as_str) != Some(issuer.as_str()) {
            return refused("wrong issuer");
        }
    }
    if let Some(audience) = &cfg.audience {
        let matches = match answer.get("aud") {
            Some(Value::String(a)) => a == audience,
            Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(audience)),
            _ => false,
        };
        if !matches {
            return refused("wrong audience");
        }
    }
    if !cfg.required_scopes.is_empty() {
        let granted: Vec<&str> = answer
            .get("scope")
            .and_then(Value::as_str)
            .map(|s| s.split(' ').collect())
            .unwrap_or_default();
        if !cfg
            .required_scopes
            .iter()
            .all(|s| granted.contains(&s.as_str()))
        {
            return refused("a required scope is missing");
        }
    }
    Ok((identity_from_claims(answer, mapping)?, exp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::introspection_vars;
    use crate::config::Config;
    use serde_json::json;

    fn setup(extra: &[(&str, &str)]) -> (IntrospectionConfig, Mapping) {
        let mut vars = introspection_vars();
        for (k, v) in extra {
            vars.insert(k.to_string(), v.to_string());
        }
        let c = Config::from_vars(&vars).unwrap();
        let m = crate::backend::claims::claims_mapping(&c);
        (c.introspection.unwrap(), m)
    }

    fn why(r: AuthResult<(Verdict, Option<u64>)>) -> String {
        match r {
            Ok((Verdict::Refused(w), _)) => w,
            Ok((Verdict::Valid(u), _)) => format!("valid {}", u.id),
            Err(e) => e.code().to_string(),
        }
    }

    #[test]
    fn item_21_5_refresh_id_and_other_non_access_tokens_are_refused_in_every_common_marking() {
        let (cfg, m) = setup(&[]);
        let now = 1_000_000;
        let base = json!({"active": true, "sub": "u-1", "email": "a@b.io", "exp": now + 30});
        let with = |k: &str, v: &str, cfg: &IntrospectionConfig| {
            let mut a = base.clone();
            a[k] = json!(v);
            why(judge(&a, cfg, &m, now))
        };
        for (k, v) in [
            ("token_type", "refresh_token"),
            ("token_type", "Refresh_Token"),
            ("token_type", "id_token"),
            (
                "token_type",
                "urn:ietf:params:oauth:token-type:refresh_token",
            ),
            ("typ", "Refresh"),
            ("typ", "Offline"),
            ("typ", "ID"),
            ("typ", "Logout"),
            ("token_use", "refresh"),
            ("token_use", "refresh_token"),
            ("token_use", "id"),
            ("token_use", "something-else"),
        ] {
            assert_eq!(with(k, v, &cfg), "not an access token", "{k}={v}");
        }
        // What access tokens carry at those servers passes.
        for (k, v) in [
            ("token_type", "Bearer"),
            ("token_type", "access_token"),
            ("typ", "Bearer"),
            ("token_use", "access"),
            ("token_use", "access_token"),
        ] {
            assert_eq!(with(k, v, &cfg), "valid u-1", "{k}={v}");
        }
        // A token_use that is not a string is no access marking either.
        let mut odd = base.clone();
        odd["token_use"] = json!(1);
        assert_eq!(why(judge(&odd, &cfg, &m, now)), "not an access token");
        // A server that leaves token_type out for refresh tokens: require the access tokens' one.
        assert_eq!(why(judge(&base, &cfg, &m, now)), "valid u-1");
        let (strict, m2) = setup(&[("BACKEND_INTROSPECTION_TOKEN_TYPE", "Bearer")]);
        assert_eq!(
            why(judge(&base, &strict, &m2, now)),
            "not an access token (token_type)"
        );
        assert_eq!(with("token_type", "bearer", &strict), "valid u-1");
        assert_eq!(
            with("token_type", "DPoP", &strict),
            "not an access token (token_type)"
        );
    }

    #[test]
    fn item_11_5_active_is_required_and_every_check_refuses() {
        let (cfg, m) = setup(&[
            ("BACKEND_INTROSPECTION_AUDIENCE", "librechat"),
            ("BACKEND_INTROSPECTION_ISSUER", "https://idp"),
            ("BACKEND_INTROSPECTION_SCOPE", "chat"),
        ]);
        let now = 1_000_000;
        let good = json!({"active": true, "sub": "u-1", "exp": now + 30, "iss": "https://idp",
            "aud": ["other", "librechat"], "scope": "openid chat", "email": "a@b.io",
            "username": "al"});
        let (v, exp) = judge(&good, &cfg, &m, now).unwrap();
        assert_eq!(exp, Some(now + 30));
        match v {
            Verdict::Valid(u) => {
                assert_eq!((u.id.as_str(), u.email.as_str()), ("u-1", "a@b.io"));
                assert_eq!(u.username.as_deref(), Some("al"));
            }
            other => panic!("{other:?}"),
        }
        let with = |k: &str, v: Value| {
            let mut a = good.clone();
            a[k] = v;
            why(judge(&a, &cfg, &m, now))
        };
        for bad in [json!(null), json!("true"), json!(1)] {
            assert_eq!(with("active", bad), "BACKEND_BAD_RESPONSE");
        }
        let mut no_active = good.clone();
        no_active.as_object_mut().unwrap().remove("active");
        assert_eq!(
            why(judge(&no_active, &cfg, &m, now)),
            "BACKEND_BAD_RESPONSE"
        );
        assert_eq!(
            why(judge(&json!([]), &cfg, &m, now)),
            "BACKEND_BAD_RESPONSE"
        );
        assert_eq!(
            with("active", json!(false)),
            "the backend reports the token inactive"
        );
        // `exp <= now` is expired (0 s leeway), as everywhere else.
        assert_eq!(with("exp", json!(now)), "token expired");
        assert_eq!(with("exp", json!("soon")), "invalid exp");
        assert_eq!(with("nbf", json!(now + 1)), "token not valid yet");
        assert_eq!(with("iss", json!("https://evil")), "wrong issuer");
        assert_eq!(with("aud", json!("other")), "wrong audience");
        assert_eq!(with("aud", json!(["a", "b"])), "wrong audience");
        assert_eq!(
            with("scope", json!("openid chatter")),
            "a required scope is missing"
        );
        assert_eq!(
            with("token_type", json!("refresh_token")),
            "not an access token"
        );
        assert_eq!(with("sub", json!(" u-1")), "token names no user");
        let mut bare = good.clone();
        for k in ["iss", "aud", "scope"] {
            bare.as_object_mut().unwrap().remove(k);
        }
        assert_ne!(why(judge(&bare, &cfg, &m, now)), "valid u-1");
        // Without the optional checks, a bare active answer with a subject is enough.
        let (cfg, m) = setup(&[]);
        assert_eq!(
            why(judge(&json!({"active": true, "sub": "u-1"}), &cfg, &m, now)),
            "valid u-1"
        );
    }
}
