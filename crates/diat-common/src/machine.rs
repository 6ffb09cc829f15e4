//! What a benchmark or a model card says about the machine, lowercase hex and the sha256 of a
//! stream: written once for every crate.

/// The value of the first `key` line of `/proc/cpuinfo` (none where there is no such file or line).
fn cpuinfo_field(key: &str) -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    text.lines().find_map(|l| {
        l.strip_prefix(key)
            .map(|r| r.trim_start_matches([' ', '\t', ':']).trim().to_string())
    })
}

/// The CPU model name from `/proc/cpuinfo` ("unknown CPU" where there is none).
pub fn cpu_model() -> String {
    cpuinfo_field("model name").unwrap_or_else(|| "unknown CPU".into())
}

/// "N × CPU model" of this machine (N: the cores this process may use).
pub fn cpu_summary() -> String {
    format!(
        "{} × {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        cpu_model()
    )
}

/// The vector and matrix extensions of this CPU that decide libtorch's kernels (`avx2`,
/// `avx512f`, `avx512_bf16`, `amx_bf16`, `amx_tile`, `avx512_vnni`, `fma`), as `/proc/cpuinfo`
/// lists them; empty where it does not.
pub fn cpu_flags() -> Vec<String> {
    const WANTED: [&str; 7] = [
        "fma",
        "avx2",
        "avx512f",
        "avx512_vnni",
        "avx512_bf16",
        "amx_tile",
        "amx_bf16",
    ];
    let line = cpuinfo_field("flags").unwrap_or_default();
    let flags: std::collections::HashSet<&str> = line.split_whitespace().collect();
    WANTED
        .iter()
        .filter(|f| flags.contains(*f))
        .map(|f| f.to_string())
        .collect()
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// sha256 (hex) and length of everything `r` yields (interrupted reads retried).
pub fn sha256_reader(mut r: impl std::io::Read) -> std::io::Result<(String, u64)> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((hex(&h.finalize()), n))
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_and_cpu() {
        assert_eq!(super::hex(&[0x00, 0xab, 0x7f]), "00ab7f");
        assert!(super::cpu_summary().contains(" × "));
    }
}
