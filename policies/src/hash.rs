//! Keyed hashing of identifiers (HMAC-SHA256) and the pseudonyms derived from it.
//!
//! A bare SHA-256 of an email is reversible by dictionary, so every hashed identifier is an
//! HMAC under a secret master key: the *digest*, by which k counts distinct subjects. The
//! digest is never published. What a release publishes is a *pseudonym* derived from it
//! under a key of that release's own ([`KeyedHasher::release_pseudonyms`]):
//!
//! ```text
//! release key = HKDF-SHA256(ikm = master key, salt = "stackpro pseudonym v1", info = release id)
//! pseudonym   = HMAC-SHA256(release key, scope || digest)[..16], as 32 lowercase hex digits
//! scope       = the record's equivalence class in the release (u32, little endian), or
//!               nothing when the policy's scope is the whole release
//! ```
//!
//! So no pseudonym value links two releases (and so two tenants, datasets or days: each is
//! its own release), and a tenant that uploads guessed addresses as its own records learns
//! their pseudonyms in its own release only, which match nothing elsewhere. With class
//! scope a buyer can count the distinct people of a class (the k guarantee is checkable)
//! but cannot follow one person from class to class. 128 bits make a collision between two
//! people of a release negligible (about 2^-64 at four billion records).
//!
//! Record ids are fingerprinted for the ledger of released records with SipHash-1-3-128
//! under a key derived the same way (`info = "record ledger"`): a fingerprint is internal
//! state, never published, and keyed so that a leaked ledger gives no ids back.
//!
//! No key appears in `Debug` output, logs or outputs; outputs name a key by its key id, a
//! keyed fingerprint that tells whether two files were made under the same key without
//! revealing it.

use std::hash::Hasher as _;

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use siphasher::sip128::{Hasher128 as _, SipHasher13};

use crate::{Error, Result};

type HmacSha256 = Hmac<Sha256>;

/// The shortest key accepted, in bytes: shorter keys are guessable.
pub const MIN_KEY_BYTES: usize = 16;

/// An HMAC-SHA256 keyed hasher. Cheap to clone; the keyed state is computed once.
#[derive(Clone)]
pub struct KeyedHasher {
    mac: HmacSha256,
    key_id: String,
    /// HKDF's pseudorandom key from the master key: every derived key comes from it.
    derive: Hkdf<Sha256>,
    /// The SipHash key of record fingerprints.
    ledger_key: (u64, u64),
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
        let derive = Hkdf::<Sha256>::new(Some(b"stackpro pseudonym v1"), key);
        let mut ledger = [0u8; 16];
        derive
            .expand(b"record ledger", &mut ledger)
            .map_err(|e| Error::InvalidKey(format!("cannot derive a key: {e}")))?;
        let (k0, k1) = ledger.split_at(8);
        let word = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
        Ok(Self {
            mac,
            key_id,
            derive,
            ledger_key: (word(k0), word(k1)),
        })
    }

    /// The pseudonym key of one release (see the module docs).
    pub fn release_pseudonyms(&self, release_id: &str) -> Pseudonymizer {
        let mut key = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's limit of 8160: expand cannot fail.
        let _ = self.derive.expand(release_id.as_bytes(), &mut key);
        Pseudonymizer::new(&key)
    }

    /// The fingerprint of a record id in the ledger of released records.
    pub fn record_fingerprint(&self, id: &str) -> u128 {
        let mut h = SipHasher13::new_with_keys(self.ledger_key.0, self.ledger_key.1);
        h.write(id.as_bytes());
        h.finish128().as_u128()
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

/// The pseudonyms of one release: a keyed function of a subject's digest and its scope.
/// Cheap to clone; the keyed state is computed once.
#[derive(Clone)]
pub struct Pseudonymizer {
    mac: HmacSha256,
    key_id: String,
    /// The SipHash key of the release's row order ([`Pseudonymizer::row_order`]).
    order_key: (u64, u64),
}

impl std::fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pseudonymizer")
            .field("key_id", &self.key_id)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// The bytes of a published pseudonym.
pub const PSEUDONYM_BYTES: usize = 16;

impl Pseudonymizer {
    fn new(key: &[u8; 32]) -> Self {
        // HMAC takes a key of any length: this cannot fail.
        let mac = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
        let mut id_mac = mac.clone();
        id_mac.update(b"stackpro key id v1");
        let key_id = format!(
            "hkdf-hmac-sha256:{}",
            &hex::encode(id_mac.finalize().into_bytes())[..16]
        );
        let mut order_mac = mac.clone();
        order_mac.update(b"stackpro row order v1");
        let order = order_mac.finalize().into_bytes();
        let word = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
        Self {
            mac,
            key_id,
            order_key: (word(&order[..8]), word(&order[8..16])),
        }
    }

    /// The derived key's public fingerprint, written into the release's files.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The pseudonym of `digest` within `scope` (a class id, or `None` for the release).
    pub fn pseudonym(&self, scope: Option<u32>, digest: &[u8; 32]) -> [u8; PSEUDONYM_BYTES] {
        let mut mac = self.mac.clone();
        if let Some(class) = scope {
            mac.update(&class.to_le_bytes());
        }
        mac.update(digest);
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; PSEUDONYM_BYTES];
        out.copy_from_slice(&full[..PSEUDONYM_BYTES]);
        out
    }
}

impl Pseudonymizer {
    /// The sort key of a published row in its file: a keyed function (SipHash-1-3 under a
    /// key of the release's own) of the row's person and scope where it has a subject, of
    /// its position where it has none. Files are written in this order, so positions
    /// carry nothing of the producer's order: rows of one person within one scope (which
    /// share a pseudonym anyway) sit side by side, any other two rows in a random order
    /// no buyer can compute. Keyed like the pseudonyms but far cheaper than their HMAC,
    /// which pass 2 computes once, when it writes the row.
    pub fn row_order(&self, scope: Option<u32>, digest: Option<&[u8; 32]>, position: u64) -> u64 {
        let mut h = SipHasher13::new_with_keys(self.order_key.0, self.order_key.1);
        match digest {
            Some(digest) => {
                h.write(&[1]);
                if let Some(class) = scope {
                    h.write(&class.to_le_bytes());
                }
                h.write(digest);
            }
            None => {
                h.write(&[0]);
                h.write(&position.to_le_bytes());
            }
        }
        h.finish()
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
    fn pseudonyms_differ_by_release_and_class_and_never_equal_the_digest() {
        let h = KeyedHasher::new(b"test-key-0123456789").expect("key");
        let digest = h.digest("ana.ruiz@example.com");
        let (a, b) = (h.release_pseudonyms("r-one"), h.release_pseudonyms("r-two"));
        assert_ne!(a.key_id(), b.key_id());
        assert_eq!(a.key_id(), h.release_pseudonyms("r-one").key_id());
        let p = a.pseudonym(Some(0), &digest);
        assert_eq!(p, a.pseudonym(Some(0), &digest), "deterministic");
        assert_ne!(p, b.pseudonym(Some(0), &digest), "another release");
        assert_ne!(p, a.pseudonym(Some(1), &digest), "another class");
        assert_ne!(p, a.pseudonym(None, &digest), "release scope");
        assert_ne!(
            &p[..],
            &digest[..PSEUDONYM_BYTES],
            "the digest is never published"
        );
        let other = KeyedHasher::new(b"another-key-0123456789").expect("key");
        assert_ne!(
            p,
            other
                .release_pseudonyms("r-one")
                .pseudonym(Some(0), &digest)
        );
        assert!(!format!("{a:?}").contains("test-key"));
    }

    #[test]
    fn row_order_is_keyed_per_release_and_scope() {
        let h = KeyedHasher::new(b"test-key-0123456789").expect("key");
        let digest = h.digest("ana.ruiz@example.com");
        let (a, b) = (h.release_pseudonyms("r-one"), h.release_pseudonyms("r-two"));
        let key = a.row_order(Some(3), Some(&digest), 0);
        assert_eq!(
            key,
            a.row_order(Some(3), Some(&digest), 99),
            "the person, not the position"
        );
        assert_ne!(key, a.row_order(Some(4), Some(&digest), 0), "another class");
        assert_ne!(
            key,
            b.row_order(Some(3), Some(&digest), 0),
            "another release"
        );
        assert_ne!(a.row_order(None, None, 1), a.row_order(None, None, 2));
    }

    #[test]
    fn record_fingerprints_are_keyed() {
        let a = KeyedHasher::new(b"key-number-one-0000").expect("key");
        let b = KeyedHasher::new(b"key-number-two-0000").expect("key");
        assert_eq!(a.record_fingerprint("evt-1"), a.record_fingerprint("evt-1"));
        assert_ne!(a.record_fingerprint("evt-1"), a.record_fingerprint("evt-2"));
        assert_ne!(a.record_fingerprint("evt-1"), b.record_fingerprint("evt-1"));
    }

    #[test]
    fn key_id_depends_on_the_key() {
        let a = KeyedHasher::new(b"key-number-one-0000").expect("key");
        let b = KeyedHasher::new(b"key-number-two-0000").expect("key");
        assert_ne!(a.key_id(), b.key_id());
    }
}
