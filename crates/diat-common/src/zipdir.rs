//! A zip archive's own central directory, read without a zip library: every entry name as
//! stored, duplicates included. Zip libraries index entries by name, so an archive holding two
//! entries of one name shows them only one (the second one's bytes win); checks that must see
//! every entry (duplicate names in a model archive or a folder of inputs) read this instead.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

const EOCD: u32 = 0x0605_4b50;
const ZIP64_LOCATOR: u32 = 0x0706_4b50;
const ZIP64_EOCD: u32 = 0x0606_4b50;
const CENTRAL: u32 = 0x0201_4b50;
/// Entries read at most (a directory claiming more is refused rather than trusted).
pub const MAX_ENTRIES: u64 = 1_000_000;

fn le16(b: &[u8], at: usize) -> u64 {
    u16::from_le_bytes([b[at], b[at + 1]]) as u64
}
fn le32(b: &[u8], at: usize) -> u64 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes")) as u64
}
fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn invalid(m: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, m.into())
}

/// The names of every entry of the zip at `path`, in central-directory order (raw bytes, as
/// stored), checked against the entry count of the end-of-central-directory record.
pub fn entry_names(path: &Path) -> io::Result<Vec<Vec<u8>>> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    // The end record: 22 bytes plus a comment of at most 65535.
    let tail_len = len.min(22 + 65_535);
    f.seek(SeekFrom::Start(len - tail_len))?;
    let mut tail = vec![0u8; tail_len as usize];
    f.read_exact(&mut tail)?;
    let pos = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&i| {
            le32(&tail, i) == EOCD as u64 && i + 22 + le16(&tail, i + 20) as usize == tail.len()
        })
        .or_else(|| {
            (0..tail.len().saturating_sub(21))
                .rev()
                .find(|&i| le32(&tail, i) == EOCD as u64)
        })
        .ok_or_else(|| invalid("no end-of-central-directory record: not a zip archive"))?;
    let eocd_at = len - tail_len + pos as u64;
    let mut entries = le16(&tail, pos + 10);
    let mut cd_size = le32(&tail, pos + 12);
    let mut cd_offset = le32(&tail, pos + 16);
    let mut end_at = eocd_at;
    if entries == 0xFFFF || cd_size == 0xFFFF_FFFF || cd_offset == 0xFFFF_FFFF {
        // Zip64: the locator sits right before the end record.
        if pos < 20 || le32(&tail, pos - 20) != ZIP64_LOCATOR as u64 {
            return Err(invalid(
                "zip64 archive without its end-of-central-directory locator",
            ));
        }
        let z64_at = le64(&tail, pos - 20 + 8);
        if z64_at.saturating_add(56) > eocd_at {
            return Err(invalid("zip64 end record outside the archive"));
        }
        let mut rec = [0u8; 56];
        f.seek(SeekFrom::Start(z64_at))?;
        f.read_exact(&mut rec)?;
        if le32(&rec, 0) != ZIP64_EOCD as u64 {
            return Err(invalid(
                "zip64 end record not found where its locator points",
            ));
        }
        entries = le64(&rec, 32);
        cd_size = le64(&rec, 40);
        cd_offset = le64(&rec, 48);
        end_at = z64_at;
    }
    if entries > MAX_ENTRIES {
        return Err(invalid(format!(
            "the archive declares {entries} entries (at most {MAX_ENTRIES} are read)"
        )));
    }
    if cd_size > end_at {
        return Err(invalid("central directory larger than the archive"));
    }
    // Data prepended to the archive shifts every offset: the directory ends where the end
    // record starts.
    let cd_start = if cd_offset.saturating_add(cd_size) == end_at {
        cd_offset
    } else {
        end_at - cd_size
    };
    let mut cd = vec![0u8; cd_size as usize];
    f.seek(SeekFrom::Start(cd_start))?;
    f.read_exact(&mut cd)?;
    let mut names = Vec::with_capacity(entries as usize);
    let mut at = 0usize;
    while at + 46 <= cd.len() && le32(&cd, at) == CENTRAL as u64 {
        let (n, x, c) = (
            le16(&cd, at + 28) as usize,
            le16(&cd, at + 30) as usize,
            le16(&cd, at + 32) as usize,
        );
        let end = at + 46 + n;
        if end > cd.len() {
            return Err(invalid("central directory entry runs past the directory"));
        }
        names.push(cd[at + 46..end].to_vec());
        at = end + x + c;
    }
    if names.len() as u64 != entries {
        return Err(invalid(format!(
            "the central directory holds {} entries, its end record says {entries}",
            names.len()
        )));
    }
    Ok(names)
}

/// The first of `names` (as [`entry_names`] gives them) that occurs twice, a trailing `/` of a
/// folder entry ignored.
pub fn first_duplicate(names: &[Vec<u8>]) -> Option<String> {
    let mut seen = std::collections::BTreeSet::new();
    names
        .iter()
        .map(|n| String::from_utf8_lossy(n).trim_end_matches('/').to_string())
        .find(|name| !seen.insert(name.clone()))
}

/// The first name that occurs twice among the entries of the zip at `path`, if any.
pub fn duplicate_name(path: &Path) -> io::Result<Option<String>> {
    Ok(first_duplicate(&entry_names(path)?))
}

/// An error naming the first entry name that occurs twice in the zip at `path`.
pub fn check_unique(path: &Path) -> io::Result<()> {
    match duplicate_name(path)? {
        None => Ok(()),
        Some(d) => Err(invalid(format!(
            "two entries named {d:?} (a zip library would show only the last one)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored (uncompressed) zip of `entries`, written by hand so that names may repeat.
    pub(crate) fn zip_bytes(entries: &[(&str, &[u8])], prefix: &[u8]) -> Vec<u8> {
        let mut out = prefix.to_vec();
        let mut central = Vec::new();
        for (name, data) in entries {
            let offset = out.len() as u32;
            let mut local = Vec::new();
            local.extend(0x0403_4b50u32.to_le_bytes());
            local.extend([20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            local.extend(0u32.to_le_bytes()); // crc (not checked here)
            local.extend((data.len() as u32).to_le_bytes());
            local.extend((data.len() as u32).to_le_bytes());
            local.extend((name.len() as u16).to_le_bytes());
            local.extend(0u16.to_le_bytes());
            local.extend(name.as_bytes());
            local.extend(*data);
            out.extend(&local);
            central.extend(CENTRAL.to_le_bytes());
            central.extend([20, 3, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            central.extend(0u32.to_le_bytes());
            central.extend((data.len() as u32).to_le_bytes());
            central.extend((data.len() as u32).to_le_bytes());
            central.extend((name.len() as u16).to_le_bytes());
            central.extend([0, 0, 0, 0, 0, 0, 0, 0]);
            central.extend(0u32.to_le_bytes());
            central.extend(offset.to_le_bytes());
            central.extend(name.as_bytes());
        }
        let cd_offset = out.len() as u32;
        out.extend(&central);
        out.extend(EOCD.to_le_bytes());
        out.extend([0, 0, 0, 0]);
        out.extend((entries.len() as u16).to_le_bytes());
        out.extend((entries.len() as u16).to_le_bytes());
        out.extend((central.len() as u32).to_le_bytes());
        out.extend(cd_offset.to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out
    }

    #[test]
    fn every_entry_is_seen_duplicates_included() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("a.zip");
        std::fs::write(
            &p,
            zip_bytes(&[("a.txt", b"1"), ("b/", b""), ("b/c", b"2")], b""),
        )
        .unwrap();
        let names = entry_names(&p).unwrap();
        assert_eq!(names, [b"a.txt".to_vec(), b"b/".to_vec(), b"b/c".to_vec()]);
        assert_eq!(duplicate_name(&p).unwrap(), None);
        std::fs::write(&p, zip_bytes(&[("x", b"1"), ("x", b"2")], b"MZ prefix")).unwrap();
        assert_eq!(duplicate_name(&p).unwrap().as_deref(), Some("x"));
        // Truncated, or not a zip at all.
        let bytes = zip_bytes(&[("x", b"1")], b"");
        std::fs::write(&p, &bytes[..bytes.len() - 5]).unwrap();
        assert!(entry_names(&p).is_err());
        std::fs::write(&p, b"<html>not found</html>").unwrap();
        assert!(
            entry_names(&p)
                .unwrap_err()
                .to_string()
                .contains("not a zip")
        );
        // An end record that claims more entries than the directory holds.
        let mut bytes = zip_bytes(&[("x", b"1")], b"");
        let n = bytes.len();
        bytes[n - 12] = 2;
        std::fs::write(&p, &bytes).unwrap();
        assert!(
            entry_names(&p)
                .unwrap_err()
                .to_string()
                .contains("end record says 2")
        );
    }
}
