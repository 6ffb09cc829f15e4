//! sha256 of files and streams, as lowercase hex.

use crate::error::{IoContext, Result};
use sha2::{Digest, Sha256};
use std::path::Path;

/// Read size for hashing and copying.
pub(crate) const CHUNK: usize = 1 << 20;

pub use diat_common::machine::{hex, sha256_reader};

/// sha256 (hex) and size of a file.
pub fn sha256_file(path: &Path) -> Result<(String, u64)> {
    let f = std::fs::File::open(path).at(path)?;
    sha256_reader(f).at(path)
}

/// sha256 (hex) of bytes.
pub fn sha256_bytes(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        assert_eq!(
            sha256_bytes(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(sha256_reader(&b"abc"[..]).unwrap().0, sha256_bytes(b"abc"));
        assert_eq!(
            sha256_bytes(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
