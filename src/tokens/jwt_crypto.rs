//! jsonwebtoken's process-wide crypto provider, and JWKS keys prepared once per `kid`.
//!
//! Backend JWTs (`BACKEND_BEARER_TOKENS=jwks`) are still decoded by `jsonwebtoken::decode` (header,
//! algorithm and claim checks unchanged); only the signature math is chosen here:
//! - RS256: ring, for keys both ring and RustCrypto accept (a 2048-4096-bit modulus, e = 65537);
//!   RustCrypto's pure-Rust RSA cost about 300 us per token on the project's machine, ring's is in
//!   OpenSSL's range. ring parses the key on every call (its API has no prepared RSA public key).
//! - ES256: ring (`ECDSA_P256_SHA256_FIXED`, about a quarter of RustCrypto's p256 time), for keys
//!   both accept: a 65-byte uncompressed SEC1 point that p256 accepts (on the curve, coordinates
//!   below p), which is exactly what ring accepts.
//! - EdDSA: ed25519-dalek (RustCrypto, as before; ring was not faster), the key decompressed once.
//! - Any other key: jsonwebtoken's RustCrypto verifier, made per token as before.
//!
//! The verdicts are the same: PKCS#1 v1.5 is deterministic, and ECDSA P-256 accepts exactly when
//! r, s are in [1, n-1] and x(u1 G + u2 Q) mod n = r in both libraries (neither demands a low s).
//!
//! How a prepared key reaches `decode`: `decode_prepared` names it in a thread-local for the call,
//! and the provider's verifier factory hands it out when asked about that very `DecodingKey`.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};

use jsonwebtoken::crypto::{rust_crypto, CryptoProvider, JwtVerifier, KeyUtils};
use jsonwebtoken::{
    Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, TokenData, Validation,
};
use ring::signature::{
    RsaPublicKeyComponents, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED, RSA_PKCS1_2048_8192_SHA256,
};
use serde::de::DeserializeOwned;

/// An RS256 public key verified by ring.
struct RingRs256 {
    n: Vec<u8>,
    e: Vec<u8>,
}

fn ring_rs256(n: &[u8], e: &[u8], message: &[u8], sig: &[u8]) -> Result<(), signature::Error> {
    RsaPublicKeyComponents { n, e }
        .verify(&RSA_PKCS1_2048_8192_SHA256, message, sig)
        .map_err(|_| signature::Error::new())
}

impl signature::Verifier<Vec<u8>> for RingRs256 {
    fn verify(&self, message: &[u8], sig: &Vec<u8>) -> Result<(), signature::Error> {
        ring_rs256(&self.n, &self.e, message, sig)
    }
}

impl JwtVerifier for RingRs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

/// Whether ring and RustCrypto both accept this RSA key: 2048-4096 bits (RustCrypto's upper bound,
/// ring's lower one), the usual public exponent.
fn ring_accepts(n: &[u8], e: &[u8]) -> bool {
    let n = match n.iter().position(|&b| b != 0) {
        Some(i) => &n[i..],
        None => return false,
    };
    let bits = n.len() * 8 - n[0].leading_zeros() as usize;
    let e = match e.iter().position(|&b| b != 0) {
        Some(i) => &e[i..],
        None => return false,
    };
    (2048..=4096).contains(&bits) && e == [1, 0, 1]
}

/// Whether ring and p256 both accept this P-256 key (see the module comment).
fn ring_accepts_p256(point: &[u8]) -> bool {
    point.len() == 65 && point[0] == 4 && p256::ecdsa::VerifyingKey::from_sec1_bytes(point).is_ok()
}

/// The signature check of a prepared key.
enum Check {
    RingRs256 { n: Vec<u8>, e: Vec<u8> },
    RingP256(Vec<u8>),
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl Check {
    fn verify(&self, message: &[u8], sig: &[u8]) -> Result<(), signature::Error> {
        match self {
            Check::RingRs256 { n, e } => ring_rs256(n, e, message, sig),
            Check::RingP256(point) => UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                .verify(message, sig)
                .map_err(|_| signature::Error::new()),
            // What jsonwebtoken's RustCrypto `EdDSAVerifier` does, without decompressing the key
            // again for every token.
            Check::Ed25519(key) => {
                let sig = ed25519_dalek::Signature::from_slice(sig)?;
                signature::Verifier::verify(key, message, &sig)
            }
        }
    }
}

/// A JWKS key for one algorithm, with its signature check prepared once (when the key set is read).
pub struct PreparedKey {
    key: DecodingKey,
    alg: Algorithm,
    /// None: jsonwebtoken's RustCrypto verifier, made per token (keys outside the rules above).
    check: Option<Arc<Check>>,
}

impl PreparedKey {
    pub fn new(key: DecodingKey, alg: Algorithm) -> PreparedKey {
        let check = match (alg, key.kind()) {
            (Algorithm::RS256, DecodingKeyKind::RsaModulusExponent { n, e })
                if ring_accepts(n, e) =>
            {
                Some(Check::RingRs256 {
                    n: n.clone(),
                    e: e.clone(),
                })
            }
            (Algorithm::ES256, DecodingKeyKind::SecretOrDer(point))
                if key.family() == AlgorithmFamily::Ec && ring_accepts_p256(point) =>
            {
                Some(Check::RingP256(point.clone()))
            }
            // RustCrypto's `EdDSAVerifier::new` reads the first 32 bytes; a shorter key stays on
            // the per-token path, whatever it does there.
            (Algorithm::EdDSA, DecodingKeyKind::SecretOrDer(bytes))
                if key.family() == AlgorithmFamily::Ed =>
            {
                bytes
                    .get(..32)
                    .and_then(|b| <&[u8; 32]>::try_from(b).ok())
                    .and_then(|b| ed25519_dalek::VerifyingKey::from_bytes(b).ok())
                    .map(Check::Ed25519)
            }
            _ => None,
        };
        PreparedKey {
            key,
            alg,
            check: check.map(Arc::new),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    #[cfg(test)]
    fn is_prepared(&self) -> bool {
        self.check.is_some()
    }
}

thread_local! {
    /// The prepared check for the `DecodingKey` (by address) of the `decode` running on this thread.
    static PREPARED: RefCell<Option<(usize, Algorithm, Arc<Check>)>> = const { RefCell::new(None) };
}

/// Clears `PREPARED` however `decode` ends.
struct PreparedScope;

impl Drop for PreparedScope {
    fn drop(&mut self) {
        PREPARED.with(|p| p.borrow_mut().take());
    }
}

/// `jsonwebtoken::decode` with the key's prepared signature check (the same checks otherwise).
pub fn decode_prepared<T: DeserializeOwned>(
    token: &str,
    key: &PreparedKey,
    validation: &Validation,
) -> jsonwebtoken::errors::Result<TokenData<T>> {
    let _scope = key.check.as_ref().map(|check| {
        let addr = &key.key as *const DecodingKey as usize;
        PREPARED.with(|p| *p.borrow_mut() = Some((addr, key.alg, check.clone())));
        PreparedScope
    });
    jsonwebtoken::decode(token, &key.key, validation)
}

/// A prepared check handed to `decode`.
struct Prepared(Arc<Check>, Algorithm);

impl signature::Verifier<Vec<u8>> for Prepared {
    fn verify(&self, message: &[u8], sig: &Vec<u8>) -> Result<(), signature::Error> {
        self.0.verify(message, sig)
    }
}

impl JwtVerifier for Prepared {
    fn algorithm(&self) -> Algorithm {
        self.1
    }
}

fn verifier_factory(
    alg: &Algorithm,
    key: &DecodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtVerifier>> {
    let addr = key as *const DecodingKey as usize;
    let prepared = PREPARED.with(|p| {
        p.borrow()
            .as_ref()
            .filter(|(a, pa, _)| *a == addr && pa == alg)
            .map(|(_, _, check)| check.clone())
    });
    if let Some(check) = prepared {
        #[cfg(test)]
        tests::PREPARED_USES.with(|n| n.set(n.get() + 1));
        return Ok(Box::new(Prepared(check, *alg)));
    }
    if *alg == Algorithm::RS256 {
        if let DecodingKeyKind::RsaModulusExponent { n, e } = key.kind() {
            if ring_accepts(n, e) {
                return Ok(Box::new(RingRs256 {
                    n: n.clone(),
                    e: e.clone(),
                }));
            }
        }
    }
    (rust_crypto::DEFAULT_PROVIDER.verifier_factory)(alg, key)
}

const RC: &CryptoProvider = &rust_crypto::DEFAULT_PROVIDER;

static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: RC.signer_factory,
    verifier_factory,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: RC.key_utils.rsa_pub_components_from_private_key,
        rsa_pub_components_from_public_key: RC.key_utils.rsa_pub_components_from_public_key,
        ec_pub_components_from_private_key: RC.key_utils.ec_pub_components_from_private_key,
        ed_pub_components_from_private_key: RC.key_utils.ed_pub_components_from_private_key,
        compute_digest: RC.key_utils.compute_digest,
    },
};

/// Installs the provider once per process, before the first token is verified. Another provider
/// installed first (by a library sharing this process, or jsonwebtoken's own default taken by a
/// token signed or verified earlier) is left in place; then everything is RustCrypto, per token.
/// Whether ours is the one in place.
pub fn install() -> bool {
    static ONCE: Once = Once::new();
    static OURS: AtomicBool = AtomicBool::new(false);
    ONCE.call_once(|| {
        // The error carries our own provider back, not the one in place.
        OURS.store(PROVIDER.install_default().is_ok(), Ordering::SeqCst);
    });
    OURS.load(Ordering::SeqCst)
}

/// Keys and tokens for the tests of this module and the timing of `backend/bearer.rs`.
#[cfg(test)]
pub(crate) mod test_keys {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use base64::Engine;
    use jsonwebtoken::Algorithm;
    use ring::rand::SystemRandom;
    use ring::signature::{self as rs, KeyPair};
    use serde_json::Value;

    type Sign = Box<dyn Fn(&[u8]) -> Vec<u8>>;

    pub(crate) struct Signer {
        pub alg: Algorithm,
        pub jwk: Value,
        sign: Sign,
    }

    pub(crate) fn signer(alg: Algorithm, kid: &str) -> Signer {
        signer_bits(alg, kid, 2048)
    }

    /// RS256 with a modulus of `bits`; the other algorithms ignore it.
    pub(crate) fn signer_bits(alg: Algorithm, kid: &str, bits: usize) -> Signer {
        let rng = SystemRandom::new();
        match alg {
            Algorithm::RS256 => {
                use rsa::traits::PublicKeyParts;
                let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), bits).unwrap();
                let jwk = serde_json::json!({"kty": "RSA", "kid": kid, "alg": "RS256",
                    "n": B64.encode(private.n().to_bytes_be()), "e": B64.encode(private.e().to_bytes_be())});
                Signer {
                    alg,
                    jwk,
                    sign: Box::new(move |m| {
                        use sha2::{Digest, Sha256};
                        private
                            .sign(rsa::Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(m))
                            .unwrap()
                    }),
                }
            }
            Algorithm::ES256 => {
                let a = &rs::ECDSA_P256_SHA256_FIXED_SIGNING;
                let pk = rs::EcdsaKeyPair::generate_pkcs8(a, &rng).unwrap();
                let pair = rs::EcdsaKeyPair::from_pkcs8(a, pk.as_ref(), &rng).unwrap();
                let p = pair.public_key().as_ref().to_vec();
                let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "kid": kid,
                    "x": B64.encode(&p[1..33]), "y": B64.encode(&p[33..])});
                Signer {
                    alg,
                    jwk,
                    sign: Box::new(move |m| {
                        pair.sign(&SystemRandom::new(), m)
                            .unwrap()
                            .as_ref()
                            .to_vec()
                    }),
                }
            }
            _ => {
                let pk = rs::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
                let pair = rs::Ed25519KeyPair::from_pkcs8(pk.as_ref()).unwrap();
                let jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "kid": kid,
                    "x": B64.encode(pair.public_key().as_ref())});
                Signer {
                    alg,
                    jwk,
                    sign: Box::new(move |m| pair.sign(m).as_ref().to_vec()),
                }
            }
        }
    }

    impl Signer {
        pub fn decoding_key(&self) -> jsonwebtoken::DecodingKey {
            let jwk = serde_json::from_value(self.jwk.clone()).unwrap();
            jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap()
        }

        pub fn token(&self, claims: &Value) -> String {
            let alg = serde_json::to_value(self.alg).unwrap();
            let header = serde_json::json!({"alg": alg, "typ": "JWT", "kid": self.jwk["kid"]});
            let data = format!(
                "{}.{}",
                B64.encode(header.to_string()),
                B64.encode(claims.to_string())
            );
            let sig = (self.sign)(data.as_bytes());
            format!("{data}.{}", B64.encode(sig))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        /// Verifiers handed out from a prepared key on this thread (the tests run one per thread).
        pub(super) static PREPARED_USES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// An RS256 token of a fresh 2048-bit key verifies through the installed provider (ring), a
    /// tampered one does not, and a 1024-bit key still verifies (RustCrypto, as before).
    #[test]
    fn rs256_verifies_with_the_installed_provider() {
        use jsonwebtoken::{decode, encode, EncodingKey, Header, Validation};
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::traits::PublicKeyParts;

        install();
        let claims = serde_json::json!({ "sub": "u-1", "exp": 4_000_000_000u64 });
        for bits in [2048, 1024] {
            let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), bits).unwrap();
            let der = private.to_pkcs1_der().unwrap();
            let token = encode(
                &Header::new(Algorithm::RS256),
                &claims,
                &EncodingKey::from_rsa_der(der.as_bytes()),
            )
            .unwrap();
            let public = private.to_public_key();
            let key = DecodingKey::from_rsa_raw_components(
                &public.n().to_bytes_be(),
                &public.e().to_bytes_be(),
            );
            assert_eq!(
                ring_accepts(&public.n().to_bytes_be(), &public.e().to_bytes_be()),
                bits == 2048
            );
            let mut validation = Validation::new(Algorithm::RS256);
            validation.required_spec_claims.clear();
            let ok = decode::<serde_json::Value>(&token, &key, &validation).unwrap();
            assert_eq!(ok.claims["sub"], "u-1");
            // One bit of the signature flipped.
            let mut bytes = token.into_bytes();
            let last = bytes.len() - 2;
            bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            assert!(decode::<serde_json::Value>(&tampered, &key, &validation).is_err());
        }
    }

    #[test]
    fn ring_only_for_keys_both_accept() {
        let n2048 = [vec![0x80], vec![0; 255]].concat();
        assert!(ring_accepts(&n2048, &[1, 0, 1]));
        assert!(ring_accepts(
            &[vec![0], n2048.clone()].concat(),
            &[0, 1, 0, 1]
        ));
        assert!(!ring_accepts(&n2048[1..], &[1, 0, 1])); // 2040 bits
        assert!(!ring_accepts(&[vec![1], vec![0; 512]].concat(), &[1, 0, 1])); // 4097 bits
        assert!(!ring_accepts(&n2048, &[3]));
        assert!(!ring_accepts(&[], &[1, 0, 1]));
    }

    use jsonwebtoken::dangerous::insecure_decode;
    use test_keys::{signer, signer_bits, Signer};

    fn validation(alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.required_spec_claims.clear();
        v.set_issuer(&["https://idp"]);
        v.validate_aud = false;
        v
    }

    /// What RustCrypto alone (jsonwebtoken's own provider, a verifier made for the token) says of
    /// the token's signature: the verdict before this module.
    fn rust_crypto_accepts(token: &str, key: &DecodingKey, alg: Algorithm) -> bool {
        let (message, sig) = token.rsplit_once('.').unwrap();
        let Ok(verifier) = (rust_crypto::DEFAULT_PROVIDER.verifier_factory)(&alg, key) else {
            return false;
        };
        let sig = jsonwebtoken::crypto::verify(sig, message.as_bytes(), key, alg);
        // `crypto::verify` goes through the installed provider; compare with RustCrypto's own too.
        let b64 = base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            token.rsplit_once('.').unwrap().1,
        );
        let own = b64.is_ok_and(|b| verifier.verify(message.as_bytes(), &b).is_ok());
        assert_eq!(
            sig.is_ok_and(|ok| ok),
            own,
            "installed provider vs RustCrypto"
        );
        own
    }

    /// A valid token, its signature and its claims tampered with, a token of another key with the
    /// same kid: each judged through `decode_prepared` as RustCrypto judges it.
    fn judge_like_rust_crypto(s: &Signer, prepared_expected: bool) {
        // Another test of this process may have used jsonwebtoken first (its default provider
        // then stays): the prepared check itself is compared below either way.
        let ours = install();
        let key = PreparedKey::new(s.decoding_key(), s.alg);
        assert_eq!(key.is_prepared(), prepared_expected, "{:?}", s.alg);
        let v = validation(s.alg);
        let claims =
            serde_json::json!({"sub": "u-1", "iss": "https://idp", "exp": 4_000_000_000u64});
        let good = s.token(&claims);
        let uses = PREPARED_USES.with(|n| n.get());
        let ok = decode_prepared::<serde_json::Value>(&good, &key, &v).unwrap();
        assert_eq!(ok.claims["sub"], "u-1");
        // The prepared check verified it (ring, or the decompressed Ed25519 key), not a fallback.
        let used = PREPARED_USES.with(|n| n.get()) - uses;
        assert_eq!(used, usize::from(ours && prepared_expected), "{:?}", s.alg);
        assert!(rust_crypto_accepts(&good, &key.key, s.alg));
        if let Some(check) = &key.check {
            let (message, sig) = good.rsplit_once('.').unwrap();
            assert!(check
                .verify(message.as_bytes(), &B64E.decode(sig).unwrap())
                .is_ok());
        }

        let (message, sig) = good.rsplit_once('.').unwrap();
        let mut bad_sig = sig.as_bytes().to_vec();
        bad_sig[3] = if bad_sig[3] == b'A' { b'B' } else { b'A' };
        let bad_sig = format!("{message}.{}", String::from_utf8(bad_sig).unwrap());
        let (header, _) = message.split_once('.').unwrap();
        let other_claims = B64E.encode(r#"{"sub":"admin","iss":"https://idp","exp":4000000000}"#);
        let bad_claims = format!("{header}.{other_claims}.{sig}");
        let other_key = test_keys::signer_bits(s.alg, "k1", 2048).token(&claims);
        let truncated = format!("{message}.{}", &sig[..sig.len() - 4]);
        let wrong_issuer = s.token(
            &serde_json::json!({"sub": "u-1", "iss": "https://evil", "exp": 4_000_000_000u64}),
        );
        for (name, token, sig_ok) in [
            ("signature", &bad_sig, false),
            ("claims", &bad_claims, false),
            ("other key", &other_key, false),
            ("truncated signature", &truncated, false),
            ("wrong issuer", &wrong_issuer, true),
        ] {
            let got = decode_prepared::<serde_json::Value>(token, &key, &v);
            let before = jsonwebtoken::decode::<serde_json::Value>(token, &key.key, &v);
            assert!(got.is_err(), "{:?} {name}", s.alg);
            assert_eq!(
                rust_crypto_accepts(token, &key.key, s.alg),
                sig_ok,
                "{name}"
            );
            let (message, sig) = token.rsplit_once('.').unwrap();
            // (A signature that is not base64 never reaches a verifier.)
            if let (Some(check), Ok(sig)) = (&key.check, B64E.decode(sig)) {
                // The prepared check alone (no provider involved): RustCrypto's verdict.
                assert_eq!(
                    check.verify(message.as_bytes(), &sig).is_ok(),
                    sig_ok,
                    "{name}"
                );
            }
            assert_eq!(
                format!("{:?}", got.unwrap_err().kind()),
                format!("{:?}", before.unwrap_err().kind()),
                "{:?} {name}",
                s.alg
            );
        }
        // The thread-local names no key once `decode_prepared` returned.
        assert!(PREPARED.with(|p| p.borrow().is_none()));
        assert!(insecure_decode::<serde_json::Value>(&good).is_ok());
    }

    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64E;
    use base64::Engine as _;

    #[test]
    fn rs256_prepared_key_judges_like_rust_crypto() {
        judge_like_rust_crypto(&signer(Algorithm::RS256, "k1"), true);
        // Outside ring's range: RustCrypto per token, as before.
        judge_like_rust_crypto(&signer_bits(Algorithm::RS256, "k1", 1024), false);
    }

    #[test]
    fn es256_prepared_key_judges_like_rust_crypto() {
        judge_like_rust_crypto(&signer(Algorithm::ES256, "k1"), true);
    }

    #[test]
    fn eddsa_prepared_key_judges_like_rust_crypto() {
        judge_like_rust_crypto(&signer(Algorithm::EdDSA, "k1"), true);
    }

    /// ECDSA signatures are malleable: (r, n - s) verifies as well as (r, s). Neither library
    /// demands a low s, so ring and p256 both accept it.
    #[test]
    fn es256_high_s_is_accepted_by_both() {
        install();
        // The order n of P-256, big-endian.
        const N: [u8; 32] = [
            0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2,
            0xfc, 0x63, 0x25, 0x51,
        ];
        let s = signer(Algorithm::ES256, "k1");
        let key = PreparedKey::new(s.decoding_key(), Algorithm::ES256);
        let token = s.token(&serde_json::json!({"sub": "u-1", "iss": "https://idp"}));
        let (message, sig) = token.rsplit_once('.').unwrap();
        let mut sig = B64E.decode(sig).unwrap();
        let mut borrow = 0i16;
        for i in (0..32).rev() {
            let d = i16::from(N[i]) - i16::from(sig[32 + i]) - borrow;
            borrow = i16::from(d < 0);
            sig[32 + i] = d.rem_euclid(256) as u8;
        }
        let flipped = format!("{message}.{}", B64E.encode(&sig));
        assert!(rust_crypto_accepts(&flipped, &key.key, Algorithm::ES256));
        assert!(key
            .check
            .as_ref()
            .unwrap()
            .verify(message.as_bytes(), &sig)
            .is_ok());
        assert!(decode_prepared::<serde_json::Value>(
            &flipped,
            &key,
            &validation(Algorithm::ES256)
        )
        .is_ok());
    }

    /// Keys outside ring's rules stay with RustCrypto: a P-256 point off the curve, a short
    /// Ed25519 key, a key for another algorithm.
    #[test]
    fn keys_outside_the_rules_are_not_prepared() {
        let mut point = vec![4u8];
        point.extend_from_slice(&[1; 64]);
        assert!(!ring_accepts_p256(&point));
        assert!(!ring_accepts_p256(&point[..33]));
        let off_curve =
            DecodingKey::from_ec_components(&B64E.encode([1u8; 32]), &B64E.encode([1u8; 32]))
                .unwrap();
        assert!(!PreparedKey::new(off_curve, Algorithm::ES256).is_prepared());
        let ed = signer(Algorithm::EdDSA, "k1").decoding_key();
        assert!(!PreparedKey::new(ed.clone(), Algorithm::ES256).is_prepared());
        assert!(PreparedKey::new(ed, Algorithm::EdDSA).is_prepared());
        let short = DecodingKey::from_ed_components(&B64E.encode([7u8; 31])).unwrap();
        assert!(!PreparedKey::new(short, Algorithm::EdDSA).is_prepared());
    }
}
