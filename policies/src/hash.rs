//! Keyed hashing of identifiers (HMAC-SHA256).
//!
//! A bare SHA-256 of an email is reversible by dictionary, so every hashed identifier is an
//! HMAC under a secret key. The key never appears in `Debug` output, logs or outputs;
//! outputs name it by its [`KeyedHasher::key_id`] fingerprint instead, so a buyer can tell
//! whether two releases were hashed under the same key without learning it.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{Error, Result};

type HmacSha256 = Hmac<Sha256>;

/// The shortest key accepted, in bytes: shorter keys are guessable.
pub const MIN_KEY_BYTES: usize = 16;

/// An HMAC-SHA256 keyed hasher. Cheap to clone; the keyed state is computed once.
#[derive(Clone)]
pub struct KeyedHasher {
    mac: HmacSha256,
    key_id: String,
}

impl std::fmt::Debug for KeyedHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedHasher")
            .field("key_id", &self.key_id)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl KeyedHasher {
    /// A hasher over `key`'s bytes. Keys shorter than [`MIN_KEY_BYTES`] are refused.
    pub fn new(key: &[u8]) -> Result<Self> {
        if key.len() < MIN_KEY_BYTES {
            return Err(Error::InvalidKey(format!(
                "the key has {} bytes; at least {MIN_KEY_BYTES} are required",
                key.len()
            )));
        }
        let mac = HmacSha256::new_from_slice(key)
            .map_err(|e| Error::InvalidKey(format!("unusable key: {e}")))?;
        // The fingerprint is itself keyed, so it reveals nothing about the key.
        let mut id_mac = mac.clone();
        id_mac.update(b"stackpro key id v1");
        let key_id = format!(
            "hmac-sha256:{}",
            &hex::encode(id_mac.finalize().into_bytes())[..16]
        );
        Ok(Self { mac, key_id })
    }

    /// The key's public fingerprint, written into outputs instead of the key.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The raw 32-byte MAC of the normalized value (trimmed, Unicode-lowercased).
    pub fn digest(&self, value: &str) -> [u8; 32] {
        let trimmed = value.trim();
        let mut mac = self.mac.clone();
        if trimmed.is_ascii() {
            // ASCII lowercases byte for byte, as `to_lowercase` would: through a buffer on
            // the stack, where `to_lowercase` allocated a string per mixed-case address.
            let mut lower = [0u8; 64];
            for piece in trimmed.as_bytes().chunks(lower.len()) {
                let lower = &mut lower[..piece.len()];
                lower.copy_from_slice(piece);
                lower.make_ascii_lowercase();
                mac.update(lower);
            }
        } else {
            mac.update(trimmed.to_lowercase().as_bytes());
        }
        mac.finalize().into_bytes().into()
    }

    /// The lowercase hex MAC of the normalized value: the published form.
    pub fn hash(&self, value: &str) -> String {
        hex::encode(self.digest(value))
    }
}

/// A 64-bit subject key taken from a digest: distinct subjects are counted by it.
///
/// A collision can only merge two people into one, which makes classes look smaller
/// than they are: the safe direction for k-anonymity.
pub fn subject_key(digest: &[u8; 32]) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_keys_are_refused() {
        assert!(matches!(
            KeyedHasher::new(b"short"),
            Err(Error::InvalidKey(_))
        ));
    }

    #[test]
    fn debug_never_shows_the_key() {
        let h = KeyedHasher::new(b"super-secret-key-material").expect("key");
        let shown = format!("{h:?}");
        assert!(!shown.contains("super-secret"));
        assert!(shown.contains("hmac-sha256:"));
    }

    #[test]
    fn mixed_case_hashes_as_its_lowercase_at_any_length() {
        let h = KeyedHasher::new(b"test-key-0123456789").expect("key");
        for local in ["Ana.Ruiz", &"AbC".repeat(40)] {
            let mixed = format!("  {local}@Example.COM ");
            let lower = format!("{}@example.com", local.to_lowercase());
            assert_eq!(h.hash(&mixed), h.hash(&lower), "{mixed}");
        }
        assert_eq!(h.hash("ÉLODIE@Exemple.fr"), h.hash("élodie@exemple.fr"));
        assert_ne!(h.hash("ana@example.com"), h.hash("anb@example.com"));
    }

    #[test]
    fn key_id_depends_on_the_key() {
        let a = KeyedHasher::new(b"key-number-one-0000").expect("key");
        let b = KeyedHasher::new(b"key-number-two-0000").expect("key");
        assert_ne!(a.key_id(), b.key_id());
    }
}
