//! The API's two secrets, each with one job: the pepper that hashes API keys, and the
//! keys that sign download URLs. Neither is the pipeline's hashing key (the settings
//! refuse a secret equal to it), so a leak of one never exposes the others.
//!
//! API keys look like `spk_{key id}_{secret}`: the id (16 hex digits) finds the stored
//! row, the secret (64 hex digits, 256 random bits) is checked against the row's
//! HMAC-SHA256 under the pepper. A leaked table holds neither secrets nor the pepper, and
//! the secrets' entropy makes guessing hopeless even with it.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The shortest secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// Why a secret is unusable.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{0} must be at least {MIN_SECRET_BYTES} bytes")]
    TooShort(String),
    #[error("{0}")]
    Malformed(String),
}

/// A freshly issued API key: the full token (shown once) and what is stored.
#[derive(Debug, Clone)]
pub struct IssuedKey {
    /// `spk_{id}_{secret}`: give it to the buyer; it is not stored.
    pub token: String,
    pub key_id: String,
    /// Hex HMAC of the secret: store it.
    pub secret_hash: String,
}

/// Hashes and checks API keys under the pepper.
#[derive(Clone)]
pub struct KeyHasher {
    pepper: Vec<u8>,
}

impl std::fmt::Debug for KeyHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyHasher(..)")
    }
}

impl KeyHasher {
    /// # Errors
    /// The pepper is shorter than [`MIN_SECRET_BYTES`].
    pub fn new(pepper: &[u8]) -> Result<Self, SecretError> {
        if pepper.len() < MIN_SECRET_BYTES {
            return Err(SecretError::TooShort("the API key pepper".into()));
        }
        Ok(Self {
            pepper: pepper.to_vec(),
        })
    }

    /// The pepper's bytes, to check no other secret equals it.
    pub(crate) fn pepper(&self) -> &[u8] {
        &self.pepper
    }

    fn mac(&self, key_id: &str, secret: &str) -> HmacSha256 {
        // `new_from_slice` accepts any key length for HMAC.
        let mut mac = HmacSha256::new_from_slice(&self.pepper).unwrap_or_else(|_| unreachable!());
        mac.update(key_id.as_bytes());
        mac.update(b":");
        mac.update(secret.as_bytes());
        mac
    }

    /// A new random key.
    #[must_use]
    pub fn issue(&self) -> IssuedKey {
        let mut rng = rand::rngs::OsRng;
        let mut id = [0_u8; 8];
        let mut secret = [0_u8; 32];
        rng.fill_bytes(&mut id);
        rng.fill_bytes(&mut secret);
        let (key_id, secret) = (hex::encode(id), hex::encode(secret));
        let secret_hash = hex::encode(self.mac(&key_id, &secret).finalize().into_bytes());
        IssuedKey {
            token: format!("spk_{key_id}_{secret}"),
            key_id,
            secret_hash,
        }
    }

    /// Splits a token into (key id, secret) if it has the key's shape.
    #[must_use]
    pub fn parse(token: &str) -> Option<(&str, &str)> {
        let rest = token.strip_prefix("spk_")?;
        let (id, secret) = rest.split_once('_')?;
        let hexy = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
        (hexy(id, 16) && hexy(secret, 64)).then_some((id, secret))
    }

    /// Whether `secret` is the one `stored_hash` was made from, in constant time.
    #[must_use]
    pub fn verify(&self, key_id: &str, secret: &str, stored_hash: &str) -> bool {
        match hex::decode(stored_hash) {
            Ok(stored) => self.mac(key_id, secret).verify_slice(&stored).is_ok(),
            Err(_) => false,
        }
    }
}

/// The URL signing keys by id; new URLs are signed with the current one, and URLs signed
/// with any listed key verify, so a key rotates by adding the new one first and dropping
/// the old one after the longest URL lifetime.
#[derive(Clone)]
pub struct UrlKeys {
    current: String,
    keys: BTreeMap<String, Vec<u8>>,
}

impl std::fmt::Debug for UrlKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UrlKeys")
            .field("current", &self.current)
            .field("ids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl UrlKeys {
    /// Parses `kid:secret[,kid:secret…]`; the first key is the current one.
    ///
    /// # Errors
    /// An entry without `:`, an id that is not `[A-Za-z0-9_-]+`, a repeated id, or a
    /// secret under [`MIN_SECRET_BYTES`].
    pub fn parse(spec: &str) -> Result<Self, SecretError> {
        let mut keys = BTreeMap::new();
        let mut current = None;
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (kid, secret) = entry.split_once(':').ok_or_else(|| {
                SecretError::Malformed("URL signing keys are `kid:secret` pairs".into())
            })?;
            if kid.is_empty()
                || !kid
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
            {
                return Err(SecretError::Malformed(format!(
                    "URL signing key id {kid:?} must be letters, digits, '-' or '_'"
                )));
            }
            if secret.len() < MIN_SECRET_BYTES {
                return Err(SecretError::TooShort(format!("URL signing key {kid}")));
            }
            if keys
                .insert(kid.to_owned(), secret.as_bytes().to_vec())
                .is_some()
            {
                return Err(SecretError::Malformed(format!(
                    "URL signing key id {kid} is given twice"
                )));
            }
            current.get_or_insert_with(|| kid.to_owned());
        }
        let current =
            current.ok_or_else(|| SecretError::Malformed("no URL signing key was given".into()))?;
        Ok(Self { current, keys })
    }

    /// Every secret's bytes, to check none equals another secret.
    pub(crate) fn secrets(&self) -> impl Iterator<Item = &[u8]> {
        self.keys.values().map(Vec::as_slice)
    }

    fn mac(&self, kid: &str, path: &str, expires: i64) -> Option<HmacSha256> {
        let key = self.keys.get(kid)?;
        let mut mac = HmacSha256::new_from_slice(key).ok()?;
        // Length-prefixed fields: no two (kid, expires, path) give the same message.
        for field in [kid, &expires.to_string(), path] {
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field.as_bytes());
        }
        Some(mac)
    }

    /// Signs `path` (relative to the curated root) until `expires` (Unix seconds):
    /// `(kid, hex signature)`.
    #[must_use]
    pub fn sign(&self, path: &str, expires: i64) -> (String, String) {
        let sig = self
            .mac(&self.current, path, expires)
            .map(|m| hex::encode(m.finalize().into_bytes()))
            .unwrap_or_default();
        (self.current.clone(), sig)
    }

    /// Whether `sig` signs (`path`, `expires`) under key `kid`, in constant time.
    #[must_use]
    pub fn verify(&self, kid: &str, path: &str, expires: i64, sig: &str) -> bool {
        match (self.mac(kid, path, expires), hex::decode(sig)) {
            (Some(mac), Ok(sig)) => mac.verify_slice(&sig).is_ok(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEPPER: &[u8] = b"pepper-pepper-pepper-pepper-pepper!";

    #[test]
    fn an_issued_key_verifies_and_nothing_else_does() {
        let hasher = KeyHasher::new(PEPPER).expect("pepper");
        let key = hasher.issue();
        let (id, secret) = KeyHasher::parse(&key.token).expect("shape");
        assert_eq!(id, key.key_id);
        assert!(hasher.verify(id, secret, &key.secret_hash));
        assert!(
            !key.secret_hash.contains(secret),
            "the hash is not the secret"
        );
        let other = hasher.issue();
        let (_, other_secret) = KeyHasher::parse(&other.token).expect("shape");
        assert!(!hasher.verify(id, other_secret, &key.secret_hash));
        let peppered = KeyHasher::new(b"another-pepper-another-pepper-another").expect("pepper");
        assert!(
            !peppered.verify(id, secret, &key.secret_hash),
            "the pepper is part of the hash"
        );
        assert!(!hasher.verify(id, secret, "zz"));
        for bad in [
            "",
            "spk_",
            "spk_abc_def",
            &key.token.replace("spk_", "sk_"),
            &format!("{}0", key.token),
        ] {
            assert!(KeyHasher::parse(bad).is_none(), "{bad}");
        }
        assert!(KeyHasher::new(b"short").is_err());
    }

    #[test]
    fn url_signatures_bind_path_expiry_and_key() {
        let keys = UrlKeys::parse(
            "k2:second-secret-second-secret-second-secret, k1:first-secret-first-secret-first-secret",
        )
        .expect("keys");
        let (kid, sig) = keys.sign("dataset=a/part-0.parquet", 1_800_000_000);
        assert_eq!(kid, "k2");
        assert!(keys.verify(&kid, "dataset=a/part-0.parquet", 1_800_000_000, &sig));
        assert!(!keys.verify(&kid, "dataset=a/part-1.parquet", 1_800_000_000, &sig));
        assert!(!keys.verify(&kid, "dataset=a/part-0.parquet", 1_800_000_001, &sig));
        assert!(!keys.verify("k1", "dataset=a/part-0.parquet", 1_800_000_000, &sig));
        assert!(!keys.verify("k9", "dataset=a/part-0.parquet", 1_800_000_000, &sig));
        // Rotation: a URL signed under k1 still verifies while k1 is listed.
        let old = UrlKeys::parse("k1:first-secret-first-secret-first-secret").expect("old");
        let (kid, sig) = old.sign("p", 5);
        assert!(keys.verify(&kid, "p", 5, &sig));
        for bad in [
            "",
            "k1",
            "k1:short",
            "k 1:first-secret-first-secret-first-secret",
            "k1:first-secret-first-secret-first-secret,k1:first-secret-first-secret-first-secret",
        ] {
            assert!(UrlKeys::parse(bad).is_err(), "{bad}");
        }
    }
}
