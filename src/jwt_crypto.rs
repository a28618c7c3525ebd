//! jsonwebtoken's process-wide crypto provider: RS256 signatures of backend JWTs are verified with
//! ring (already linked for TLS), everything else stays with jsonwebtoken's RustCrypto provider.
//!
//! Why: RustCrypto's pure-Rust RSA verify cost about 300 us per token on the project's machine
//! (`bench/micro.js`, JWKS first sight), five times Node's OpenSSL; ring's is in OpenSSL's range.
//! The verdicts are the same: PKCS#1 v1.5 with SHA-256 is deterministic, and ring is used only for
//! keys both accept (a 2048-4096-bit modulus, e = 65537); any other key goes to RustCrypto as before.

use std::sync::Once;

use jsonwebtoken::crypto::{rust_crypto, CryptoProvider, JwtVerifier, KeyUtils};
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind};
use ring::signature::{RsaPublicKeyComponents, RSA_PKCS1_2048_8192_SHA256};

/// An RS256 public key verified by ring.
struct RingRs256 {
    n: Vec<u8>,
    e: Vec<u8>,
}

impl signature::Verifier<Vec<u8>> for RingRs256 {
    fn verify(&self, message: &[u8], sig: &Vec<u8>) -> Result<(), signature::Error> {
        RsaPublicKeyComponents {
            n: &self.n,
            e: &self.e,
        }
        .verify(&RSA_PKCS1_2048_8192_SHA256, message, sig)
        .map_err(|_| signature::Error::new())
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

fn verifier_factory(
    alg: &Algorithm,
    key: &DecodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtVerifier>> {
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
/// installed first (by a library sharing this process) is left in place.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = PROVIDER.install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
