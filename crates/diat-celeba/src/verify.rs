//! `--verify`: the official files' md5 sums (the table torchvision's CelebA loader checks).

use crate::error::{Error, Result};
use md5::{Digest, Md5};
use std::path::Path;

/// (file name, md5) of the official CelebA files.
pub const OFFICIAL_MD5: [(&str, &str); 6] = [
    ("img_align_celeba.zip", "00d2c5bc6d35e252742224ab0c1e8fcb"),
    ("list_attr_celeba.txt", "75e246fa4810816ffd6ee81facbd244c"),
    ("identity_CelebA.txt", "32bd1bd63d3c78cd57e08160ec5ed1e2"),
    ("list_bbox_celeba.txt", "00566efa6fedff7a56946cd1c10f1c16"),
    (
        "list_landmarks_align_celeba.txt",
        "cc24ecafdb5b50baae59b03474781f8c",
    ),
    (
        "list_eval_partition.txt",
        "d32c9cbf5e040fd4025c592c306e6668",
    ),
];

/// md5 (hex) of a file, streamed.
pub fn md5_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Md5::new();
    std::io::copy(&mut f, &mut h).map_err(|e| Error::io(path, e))?;
    Ok(crate::store::hex(&h.finalize()))
}

/// The expected md5 of an official file name, if it is one.
pub fn expected_md5(path: &Path) -> Option<&'static str> {
    let name = path.file_name()?.to_str()?;
    OFFICIAL_MD5
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, m)| *m)
}

/// Checks `path` against the official md5 (files that are not official are skipped: `Ok(None)`).
pub fn verify_file(path: &Path) -> Result<Option<String>> {
    let Some(expected) = expected_md5(path) else {
        return Ok(None);
    };
    let actual = md5_file(path)?;
    if actual != expected {
        return Err(Error::Checksum {
            path: path.into(),
            expected: expected.into(),
            actual,
        });
    }
    Ok(Some(actual))
}
