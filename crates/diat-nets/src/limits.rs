//! Limits of every network configuration, checked before anything is allocated: the same checks
//! run on a pipeline file, on `--set` overrides and on the config a checkpoint carries in its
//! metadata, and every refusal names the key, the value and the allowed range.
//!
//! [`NetConfig::state_elements`] counts a network's parameters and buffers exactly from its
//! config, so a loader can compare a checkpoint's metadata with the tensors in its header (and
//! refuse a config that does not describe the weights) and a trainer can estimate memory
//! ([`check_memory`]) before a single tensor exists.

use crate::error::{NetsError, Result};

/// A number as a config file writes it (`1e-12`, `0.25`, `10000000`).
pub trait Show: PartialOrd + Copy {
    fn show(self) -> String;
}

macro_rules! show_int {
    ($($t:ty),*) => {$(impl Show for $t {
        fn show(self) -> String {
            self.to_string()
        }
    })*};
}
show_int!(i64, u64, u32, usize);

impl Show for f64 {
    fn show(self) -> String {
        let a = self.abs();
        if a == 0.0 || !a.is_finite() || (1e-4..1e8).contains(&a) {
            self.to_string()
        } else {
            format!("{self:e}")
        }
    }
}

/// `key = value` must lie in `lo..=hi`.
pub fn in_range<T: Show>(key: &str, value: T, lo: T, hi: T) -> Result<()> {
    // Written so that NaN fails too.
    if value >= lo && value <= hi {
        Ok(())
    } else {
        Err(NetsError::Config(format!(
            "{key} = {} is out of range (allowed {}..={})",
            value.show(),
            lo.show(),
            hi.show()
        )))
    }
}

/// `key = value` must be a multiple of `m` in `lo..=hi`.
pub fn multiple_in_range(key: &str, value: i64, m: i64, lo: i64, hi: i64) -> Result<()> {
    in_range(key, value, lo, hi)?;
    if value % m != 0 {
        return Err(NetsError::Config(format!(
            "{key} = {value} must be a multiple of {m} (allowed {lo}..={hi})"
        )));
    }
    Ok(())
}

/// Channel multipliers: a thousandth of the paper's width up to 16 times it.
pub const WIDTH: (f64, f64) = (0.001, 16.0);
/// Image sides in pixels.
pub const IMAGE_SIZE: (i64, i64) = (16, 2048);

/// A network configuration: range checks and an exact count of the network's state.
pub trait NetConfig: serde::de::DeserializeOwned {
    /// Checks every field; `key(field)` names it in messages (`model.width`,
    /// `diat.config.width`, ...).
    fn check(&self, key: &dyn Fn(&str) -> String) -> Result<()>;
    /// Elements of every tensor of the network's state (parameters and buffers, as saved).
    fn state_elements(&self) -> f64;
    /// Elements of the activations one image keeps for the backward pass (a lower bound: each
    /// layer's output, its normalised and activated copies).
    fn activation_elements(&self) -> f64;
}

/// Memory this process may use: `DIAT_MEMORY_LIMIT` (bytes, or with a K/M/G suffix) when set,
/// else the kernel's `MemAvailable` (no limit where neither is known).
pub fn memory_budget() -> Option<f64> {
    if let Ok(v) = std::env::var("DIAT_MEMORY_LIMIT") {
        return parse_bytes(&v);
    }
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024.0)
}

fn parse_bytes(s: &str) -> Option<f64> {
    let s = s.trim();
    let (num, mult) = match s.chars().last()?.to_ascii_uppercase() {
        'K' => (&s[..s.len() - 1], 1024.0),
        'M' => (&s[..s.len() - 1], 1024.0 * 1024.0),
        'G' => (&s[..s.len() - 1], 1024.0 * 1024.0 * 1024.0),
        _ => (s, 1.0),
    };
    num.trim().parse::<f64>().ok().map(|n| n * mult)
}

/// Gigabytes, for messages.
pub fn gb(bytes: f64) -> String {
    format!("{:.1} GB", bytes / 1e9)
}

/// Refuses `what` when its estimated `bytes` exceed [`memory_budget`]; `because` names the keys
/// that drive the estimate.
pub fn check_memory(what: &str, bytes: f64, because: &str) -> Result<()> {
    match memory_budget() {
        Some(budget) if bytes > budget || bytes.is_nan() => Err(NetsError::Config(format!(
            "{what} needs at least {} of memory ({because}); {} is available \
             (set DIAT_MEMORY_LIMIT to change the limit)",
            gb(bytes),
            gb(budget)
        ))),
        _ => Ok(()),
    }
}

/// Elements of `Conv2d(cin, cout, k)` with bias followed by PyTorch's `BatchNorm2d(cout)`
/// (weight, bias, running mean and variance, `num_batches_tracked`).
pub(crate) fn conv_bn_elements(cin: i64, cout: i64, k: i64) -> f64 {
    conv_elements(cin, cout, k) + 4.0 * cout as f64 + 1.0
}

/// Elements of `Conv2d(cin, cout, k)` (or its transpose) with bias.
pub(crate) fn conv_elements(cin: i64, cout: i64, k: i64) -> f64 {
    cin as f64 * cout as f64 * (k * k) as f64 + cout as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_name_key_value_and_range() {
        let e = in_range("model.width", 1e7, WIDTH.0, WIDTH.1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("model.width = 10000000"), "{e}");
        assert!(e.contains("0.001..=16"), "{e}");
        assert!(in_range("w", f64::NAN, 0.0, 1.0).is_err());
        assert!(multiple_in_range("s", 30, 16, 16, 2048).is_err());
        assert!(multiple_in_range("s", 32, 16, 16, 2048).is_ok());
        assert_eq!(parse_bytes("2G"), Some(2.0 * 1024.0 * 1024.0 * 1024.0));
        assert_eq!(parse_bytes("100"), Some(100.0));
        assert_eq!(parse_bytes("x"), None);
    }
}
