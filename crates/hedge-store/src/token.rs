//! API token secrets: random, shown once, stored as SHA-256.

use crate::error::StoreError;
use sha2::{Digest, Sha256};

/// Every secret starts with this, so a leaked one is recognisable (and greppable by secret scanners).
pub const TOKEN_PREFIX: &str = "hedge_";

/// A new secret: the prefix and 32 random bytes from the operating system, hex-encoded.
pub(crate) fn new_secret() -> Result<String, StoreError> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|e| StoreError::Io {
        context: "reading random bytes for an API token".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(format!("{TOKEN_PREFIX}{}", hex(&bytes)))
}

/// The stored form of a secret: lower-case hex SHA-256 of its UTF-8 bytes.
pub fn hash_secret(secret: &str) -> String {
    sha256_hex(secret.as_bytes())
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// 8 random bytes, hex: a store's instance id, embedded in idempotency keys.
pub(crate) fn new_instance_id() -> Result<String, StoreError> {
    let mut bytes = [0u8; 8];
    getrandom::getrandom(&mut bytes).map_err(|e| StoreError::Io {
        context: "reading random bytes for the store instance id".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(hex(&bytes))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_and_hash_is_sha256() {
        let a = new_secret().unwrap();
        let b = new_secret().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == TOKEN_PREFIX.len() + 64);
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
