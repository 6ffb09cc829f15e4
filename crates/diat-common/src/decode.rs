//! Decoder strictness shared by every command that reads images (`data`, `align`, `apply`,
//! `eval`): a file cut short is an error, never an image with a grey or repeated bottom.

/// A JPEG (starting with SOI, `FF D8`) must end with its end-of-image marker `FF D9`, followed at
/// most by padding: decoders fill a file cut short with grey and report nothing. Inside the
/// entropy-coded data an `FF` byte is always stuffed (`FF 00`) or a restart marker, so `FF D9`
/// near the end is the real EOI. Other formats pass unchecked.
pub fn check_complete_jpeg(bytes: &[u8]) -> std::result::Result<(), String> {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return Ok(());
    }
    let tail = &bytes[bytes.len().saturating_sub(4096)..];
    match tail.windows(2).rposition(|w| w == [0xFF, 0xD9]) {
        Some(_) => Ok(()),
        None => Err("truncated JPEG (no end-of-image marker): the file was cut short".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jpegs_must_end_with_their_eoi_marker() {
        assert!(check_complete_jpeg(&[0xFF, 0xD8, 1, 2, 0xFF, 0xD9]).is_ok());
        assert!(check_complete_jpeg(&[0xFF, 0xD8, 1, 2, 0xFF, 0xD9, 0, 0]).is_ok());
        assert!(check_complete_jpeg(&[0xFF, 0xD8, 1, 2, 3]).is_err());
        assert!(
            check_complete_jpeg(b"\x89PNG").is_ok(),
            "other formats pass"
        );
    }
}
