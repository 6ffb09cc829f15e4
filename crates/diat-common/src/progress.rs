//! Progress for long work: an indicatif bar when stderr is a terminal, otherwise plain periodic
//! log lines (`label: 1200/5000 (24.0%) 850.3/s eta 4s`) every `DIAT_LOG_EVERY` seconds (default 10),
//! plus a final line. Cheap to call from many threads at once.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// An indicatif bar on stderr.
    Bar,
    /// Plain lines on stderr every so often.
    Lines,
    /// Nothing (tests, `--quiet`).
    Hidden,
}

impl Mode {
    /// Bar on a terminal, lines otherwise; `DIAT_PROGRESS=bar|lines|none` overrides.
    pub fn auto() -> Self {
        match std::env::var("DIAT_PROGRESS").as_deref() {
            Ok("bar") => Mode::Bar,
            Ok("lines") => Mode::Lines,
            Ok("none") => Mode::Hidden,
            _ if std::io::stderr().is_terminal() => Mode::Bar,
            _ => Mode::Lines,
        }
    }
}

/// A progress counter for one step of work.
#[derive(Debug)]
pub struct Progress {
    label: String,
    total: Option<u64>,
    done: AtomicU64,
    start: Instant,
    bar: Option<ProgressBar>,
    every: Duration,
    last_line: Mutex<Instant>,
    mode: Mode,
    message: Mutex<String>,
}

impl Progress {
    /// A counter for `total` items (None: unknown), shown as [`Mode::auto`] decides.
    pub fn new(label: impl Into<String>, total: Option<u64>) -> Self {
        Self::with_mode(label, total, Mode::auto())
    }

    /// A counter shown in the given mode.
    pub fn with_mode(label: impl Into<String>, total: Option<u64>, mode: Mode) -> Self {
        let label = label.into();
        let bar = (mode == Mode::Bar).then(|| {
            let bar = match total {
                Some(t) => ProgressBar::with_draw_target(Some(t), ProgressDrawTarget::stderr()),
                None => ProgressBar::new_spinner(),
            };
            let tmpl = if total.is_some() {
                "{prefix:.bold} [{elapsed_precise}] {wide_bar} {pos}/{len} {per_sec} eta {eta} {msg}"
            } else {
                "{prefix:.bold} [{elapsed_precise}] {spinner} {pos} {per_sec} {msg}"
            };
            bar.set_style(ProgressStyle::with_template(tmpl).expect("valid template"));
            bar.set_prefix(label.clone());
            bar
        });
        let secs = std::env::var("DIAT_LOG_EVERY")
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(10.0);
        Self {
            label,
            total,
            done: AtomicU64::new(0),
            start: Instant::now(),
            bar,
            every: Duration::from_secs_f64(secs.max(0.0)),
            last_line: Mutex::new(Instant::now()),
            mode,
            message: Mutex::new(String::new()),
        }
    }

    /// Adds `n` finished items.
    pub fn inc(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        if let Some(bar) = &self.bar {
            bar.inc(n);
        } else if self.mode == Mode::Lines {
            let now = Instant::now();
            let mut last = self.last_line.lock().unwrap_or_else(|e| e.into_inner());
            if now.duration_since(*last) >= self.every {
                *last = now;
                drop(last);
                eprintln!("{}", self.line(done));
            }
        }
    }

    /// Sets a short status message (losses, current file...).
    pub fn set_message(&self, msg: impl Into<String>) {
        let msg = msg.into();
        if let Some(bar) = &self.bar {
            bar.set_message(msg.clone());
        }
        *self.message.lock().unwrap_or_else(|e| e.into_inner()) = msg;
    }

    /// Items finished so far.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Elapsed time since creation.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    fn line(&self, done: u64) -> String {
        let secs = self.start.elapsed().as_secs_f64().max(1e-9);
        let rate = done as f64 / secs;
        let msg = self.message.lock().map(|m| m.clone()).unwrap_or_default();
        let msg = if msg.is_empty() {
            String::new()
        } else {
            format!(" {msg}")
        };
        match self.total {
            Some(t) if t > 0 => {
                let eta = if rate > 0.0 {
                    (t.saturating_sub(done)) as f64 / rate
                } else {
                    f64::NAN
                };
                format!(
                    "{}: {done}/{t} ({:.1}%) {rate:.1}/s eta {eta:.0}s{msg}",
                    self.label,
                    100.0 * done as f64 / t as f64
                )
            }
            _ => format!("{}: {done} {rate:.1}/s{msg}", self.label),
        }
    }

    /// Ends the display with a summary line.
    pub fn finish(&self) {
        let done = self.done();
        if let Some(bar) = &self.bar {
            bar.finish();
        } else if self.mode == Mode::Lines {
            eprintln!(
                "{} (done in {:.1}s)",
                self.line(done),
                self.start.elapsed().as_secs_f64()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_across_threads_and_formats_lines() {
        let p = Progress::with_mode("decode", Some(1000), Mode::Hidden);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..250 {
                        p.inc(1)
                    }
                });
            }
        });
        assert_eq!(p.done(), 1000);
        p.set_message("loss 0.5");
        let line = p.line(500);
        assert!(line.starts_with("decode: 500/1000 (50.0%)"), "{line}");
        assert!(line.ends_with("loss 0.5"), "{line}");
    }
}
