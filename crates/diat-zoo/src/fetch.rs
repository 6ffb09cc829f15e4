//! Verified, resumable downloads into the content-addressed cache.
//!
//! A pull either leaves exactly the published bytes under `blobs/sha256/<hex>` or fails with an
//! error that says why; nothing else ever appears under a blob's final name:
//!
//! - Bytes go to `blobs/sha256/<hex>.partial-<pid>-<unique>`, a temporary file of this process
//!   alone, hashed as they arrive. Only after the size and the sha256 match is the file synced,
//!   made read-only and renamed (atomically) to its final name. Two processes pulling the same
//!   file each write their own temporary file and both rename identical bytes into place, so
//!   parallel pulls into one cache are safe without locks.
//! - Interrupted transfers resume with `Range: bytes=N-` and `If-Range` (the ETag or
//!   Last-Modified of the first response). A `200` instead of `206`, a `416`, a `Content-Range`
//!   that does not continue the file, or a changed validator restart the file from byte 0. A
//!   partial left by a process that no longer runs (Linux: no `/proc/<pid>`) is adopted by an
//!   atomic rename, so an interrupted pull resumes too; if a resumed file then fails its hash it
//!   is downloaded once more from scratch before the pull fails.
//! - Retries, with exponential backoff and jitter, only on timeouts (no byte for
//!   `read_timeout`, or less than `min_speed` bytes/s over `speed_window`), connection errors
//!   (refused, reset, truncated bodies), and HTTP 408, 429 and 5xx (`Retry-After` honoured up to
//!   `max_retry_delay`). Everything else (404, 403, TLS failures, a wrong hash, more bytes than
//!   published, a compressed body) fails at once. An error response's body is read (a short
//!   excerpt goes into the message) and never written to disk.
//! - A file's sources (`url`, then each of `mirrors`) are tried in order, each on its own terms:
//!   its own retries, and its bytes verified against the same size and sha256 before anything
//!   is cached. A source that fails for any reason (a dead link, retries run out, a truncated
//!   body, other bytes or another size, a refused url) is reported (a warning, and
//!   [`FetchOutcome::failed_sources`] when a later one works) and its partial deleted; the next
//!   source then starts from byte 0. When every source fails the error
//!   ([`ZooError::AllSourcesFailed`]) lists each one's url and why.
//! - `Accept-Encoding: identity` is sent and reqwest is built without decompression: a response
//!   with a `Content-Encoding` is refused rather than cached in the wrong form.
//! - Plain `http://` is refused, for the first url and for every redirect, unless the host is a
//!   loopback address or [`FetchOptions::allow_http`] is set; `file://` urls are copied locally.
//! - Proxies come from `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` (reqwest's
//!   defaults); loopback hosts are always reached directly.
//! - Offline ([`FetchOptions::offline`], `DIAT_OFFLINE=1`) never opens a connection: local
//!   sources (`file://`, and the weights shipped beside the registry, whose relative urls resolve
//!   to `file://`) are still copied and verified; a file with no local source is an error that
//!   names it and the cache path it would have.

use crate::cache::Cache;
use crate::error::{IoContext, Result, ZooError};
use crate::hash::hex;
use crate::registry::FileEntry;
use diat_common::progress::{Mode, Progress};
use reqwest::blocking::{Client, Response};
use reqwest::header::{self, HeaderMap};
use reqwest::{StatusCode, Url};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How downloads behave.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Never touch the network; missing files are errors.
    pub offline: bool,
    /// Allow plain http to non-loopback hosts (and https→http redirects).
    pub allow_http: bool,
    /// TCP/TLS connect limit.
    pub connect_timeout: Duration,
    /// Longest wait for the response head or for any byte of the body.
    pub read_timeout: Duration,
    /// Bytes per second below which a transfer counts as timed out (0: no limit) ...
    pub min_speed: u64,
    /// ... measured over windows of this length.
    pub speed_window: Duration,
    /// Retries after the first attempt, per source.
    pub retries: u32,
    /// First backoff delay; doubled on each retry, with jitter.
    pub retry_delay: Duration,
    /// Largest backoff delay (and largest `Retry-After` honoured).
    pub max_retry_delay: Duration,
    /// Show progress (bar on a terminal, lines otherwise); off: silent.
    pub progress: bool,
    /// Rehash a cached blob before trusting it (a corrupt one is downloaded again).
    pub verify_cached: bool,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            offline: false,
            allow_http: false,
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(30),
            min_speed: 1024,
            speed_window: Duration::from_secs(30),
            retries: 5,
            retry_delay: Duration::from_millis(500),
            max_retry_delay: Duration::from_secs(30),
            progress: true,
            verify_cached: true,
        }
    }
}

impl FetchOptions {
    /// Defaults, with `offline` from `DIAT_OFFLINE` (`1`, `true`, `yes`).
    pub fn from_env() -> Self {
        Self {
            offline: offline_from_env(),
            ..Self::default()
        }
    }
}

/// Whether `DIAT_OFFLINE` asks for offline mode.
pub fn offline_from_env() -> bool {
    std::env::var("DIAT_OFFLINE").is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    })
}

/// What a fetch did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FetchOutcome {
    /// The verified blob.
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
    /// Already in the cache (and verified when asked): nothing was transferred.
    pub cached: bool,
    /// The url the bytes came from.
    pub source: Option<String>,
    /// Bytes received over the network (or copied from a file:// url) by this fetch.
    pub transferred: u64,
    /// HTTP requests sent.
    pub requests: u32,
    pub seconds: f64,
    /// The sources (`url`, then the mirrors, in order) that were tried and failed before
    /// `source` delivered verified bytes; empty when the first source worked or the blob was
    /// cached. Sources skipped offline are not listed.
    pub failed_sources: Vec<FailedSource>,
}

/// A source of a file that was tried and failed (see [`FetchOutcome::failed_sources`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FailedSource {
    /// The url, as the registry lists it.
    pub url: String,
    /// Its place among the file's sources: 1 is `url`, 2 the first mirror, ...
    pub index: usize,
    /// How many sources the file has.
    pub of: usize,
    /// Why it failed (the error, without the url it is about when that led it).
    pub error: String,
}

impl std::fmt::Display for FailedSource {
    /// `source 1 of 2 (https://a/x) failed: HTTP 404 (not found)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "source {} of {} ({}) failed: {}",
            self.index, self.of, self.url, self.error
        )
    }
}

impl FetchOutcome {
    /// What happened before the bytes came from `source`, for people:
    /// `source 1 of 2 (https://a/x) failed: HTTP 404; fetched from https://b/x`, or `None`
    /// when no source failed.
    pub fn fallback_note(&self) -> Option<String> {
        if self.failed_sources.is_empty() {
            return None;
        }
        let mut s = self
            .failed_sources
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        if let Some(src) = &self.source {
            s.push_str("; fetched from ");
            s.push_str(src);
        }
        Some(s)
    }
}

/// Whether plain http may be used for `url`: https and file always; http only to loopback hosts
/// unless `allow_http`.
pub fn check_url_allowed(url: &Url, allow_http: bool) -> std::result::Result<(), String> {
    match url.scheme() {
        "https" | "file" => Ok(()),
        "http" if allow_http || is_loopback(url) => Ok(()),
        "http" => Err(
            "plain http to a non-loopback host (use https, or --allow-http to accept it)".into(),
        ),
        s => Err(format!("unsupported scheme {s:?}")),
    }
}

/// Whether the url's host is `localhost`, 127.0.0.0/8 or ::1.
pub fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The error a redirect policy returns for a forbidden hop.
#[derive(Debug)]
struct ForbiddenRedirect(String, String);

impl std::fmt::Display for ForbiddenRedirect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "redirect to {}: {}", self.0, self.1)
    }
}

impl std::error::Error for ForbiddenRedirect {}

/// Downloads files into a [`Cache`].
#[derive(Debug, Clone)]
pub struct Fetcher {
    opts: FetchOptions,
    proxied: Client,
    direct: Client,
}

enum Failure {
    /// Worth another attempt after a backoff (and the server's `Retry-After`, if any).
    Retry(String, Option<Duration>),
    /// Throw the partial away and start from byte 0 (does not use up a retry).
    Restart(String),
    /// Give up on this source.
    Fatal(ZooError),
}

/// The temporary file of one download.
struct Partial {
    path: PathBuf,
    file: fs::File,
    len: u64,
    hasher: Sha256,
    validator: Option<String>,
    /// Bytes that were not downloaded from byte 0 in one go (a resume happened).
    resumed: bool,
}

impl Partial {
    fn reset(&mut self) -> Result<()> {
        self.file.set_len(0).at(&self.path)?;
        self.file.seek(SeekFrom::Start(0)).at(&self.path)?;
        self.len = 0;
        self.hasher = Sha256::new();
        self.validator = None;
        self.resumed = false;
        Ok(())
    }
}

impl Fetcher {
    /// A fetcher with these options (builds the HTTP clients).
    pub fn new(opts: FetchOptions) -> Result<Self> {
        let build = |direct: bool| -> Result<Client> {
            let allow_http = opts.allow_http;
            let policy = reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= 10 {
                    let u = attempt.url().to_string();
                    return attempt.error(ForbiddenRedirect(u, "more than 10 redirects".into()));
                }
                match check_url_allowed(attempt.url(), allow_http) {
                    Ok(()) => attempt.follow(),
                    Err(m) => {
                        let u = attempt.url().to_string();
                        attempt.error(ForbiddenRedirect(u, m))
                    }
                }
            });
            let mut b = Client::builder()
                .user_agent(concat!("diat/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(opts.connect_timeout)
                .timeout(opts.read_timeout)
                .redirect(policy)
                .tcp_nodelay(true);
            if direct {
                b = b.no_proxy();
            }
            b.build().map_err(|e| {
                ZooError::Other(format!("cannot build the HTTP client: {}", chain(&e)))
            })
        };
        Ok(Self {
            proxied: build(false)?,
            direct: build(true)?,
            opts,
        })
    }

    /// The options.
    pub fn options(&self) -> &FetchOptions {
        &self.opts
    }

    fn client(&self, url: &Url) -> &Client {
        if is_loopback(url) {
            &self.direct
        } else {
            &self.proxied
        }
    }

    /// Makes `file` present and verified in `cache`, trying `url` then each mirror. `label`
    /// names the file in messages (e.g. `glasses@1.0.0 transform`).
    pub fn fetch(&self, cache: &Cache, file: &FileEntry, label: &str) -> Result<FetchOutcome> {
        let start = Instant::now();
        let blob = cache.blob_path(&file.sha256)?;
        if blob.exists() {
            match cache.check_blob(&file.sha256, Some(file.size), self.opts.verify_cached)? {
                crate::cache::BlobStatus::Ok => {
                    tracing::debug!("{label}: cached at {}", blob.display());
                    return Ok(FetchOutcome {
                        path: blob,
                        sha256: file.sha256.clone(),
                        size: file.size,
                        cached: true,
                        source: None,
                        transferred: 0,
                        requests: 0,
                        seconds: start.elapsed().as_secs_f64(),
                        failed_sources: Vec::new(),
                    });
                }
                bad => {
                    tracing::warn!(
                        "{label}: cached blob {} is {bad}; fetching it again",
                        blob.display()
                    );
                    cache.discard_blob(&file.sha256)?;
                }
            }
        }
        // Offline, only local copies (file:// and files shipped beside the registry) are made.
        let skipped = |source: &str| self.opts.offline && !source.starts_with("file:");
        if file.sources().all(skipped) {
            return Err(ZooError::Offline {
                what: label.to_string(),
                sha256: file.sha256.clone(),
                path: blob,
            });
        }
        let dir = cache.blob_dir();
        fs::create_dir_all(&dir).at(&dir)?;
        // Each source is tried in turn and verified on its own (size and sha256, see `finish`);
        // whatever goes wrong with one (a dead link, a truncated or different file, a refused
        // url) is reported and the next is tried. Only bytes that verified are ever renamed into
        // the cache: a failed source's temporary file is deleted before the next one starts.
        let mut errors = Vec::new();
        let mut failed_sources = Vec::new();
        let mut requests = 0;
        let of = file.sources().count();
        for (i, source) in file.sources().enumerate() {
            if skipped(source) {
                continue;
            }
            let res = match Url::parse(source) {
                Err(e) => Err(ZooError::InsecureUrl {
                    url: source.to_string(),
                    message: e.to_string(),
                }),
                Ok(url) => match check_url_allowed(&url, self.opts.allow_http) {
                    Err(m) => Err(ZooError::InsecureUrl {
                        url: source.to_string(),
                        message: m,
                    }),
                    Ok(()) if url.scheme() == "file" => {
                        self.copy_file_url(&url, file, &blob, label).map(|n| (n, 0))
                    }
                    Ok(()) => self.download(&url, file, &dir, &blob, label),
                },
            };
            match res {
                Ok((transferred, reqs)) => {
                    requests += reqs;
                    if !failed_sources.is_empty() {
                        tracing::info!(
                            "{label}: fetched from {source} (source {} of {of}) after {} failed",
                            i + 1,
                            failed_sources.len()
                        );
                    }
                    return Ok(FetchOutcome {
                        path: blob,
                        sha256: file.sha256.clone(),
                        size: file.size,
                        cached: false,
                        source: Some(source.to_string()),
                        transferred,
                        requests,
                        seconds: start.elapsed().as_secs_f64(),
                        failed_sources,
                    });
                }
                Err(e) => {
                    let next = if i + 1 < of {
                        "; trying the next source"
                    } else {
                        ""
                    };
                    tracing::warn!("{label}: source {} of {of} failed: {e}{next}", i + 1);
                    failed_sources.push(FailedSource {
                        url: source.to_string(),
                        index: i + 1,
                        of,
                        error: reason(&e, source, label),
                    });
                    errors.push(e);
                }
            }
        }
        if errors.len() == 1 {
            Err(errors.pop().expect("one error"))
        } else {
            Err(ZooError::AllSourcesFailed {
                what: label.to_string(),
                errors,
            })
        }
    }

    /// GETs a small text document (a registry by url), with the same url rules and retries.
    pub fn fetch_text(&self, url: &str, limit: u64) -> Result<String> {
        if self.opts.offline {
            return Err(ZooError::Other(format!(
                "offline (DIAT_OFFLINE=1 or --offline): cannot read {url}"
            )));
        }
        let u = Url::parse(url).map_err(|e| ZooError::InsecureUrl {
            url: url.into(),
            message: e.to_string(),
        })?;
        check_url_allowed(&u, self.opts.allow_http).map_err(|m| ZooError::InsecureUrl {
            url: url.into(),
            message: m,
        })?;
        if u.scheme() == "file" {
            let p = u
                .to_file_path()
                .map_err(|_| ZooError::Other(format!("{url}: not a local path")))?;
            return fs::read_to_string(&p).at(&p);
        }
        let mut attempt = 0;
        loop {
            let res = self
                .client(&u)
                .get(u.clone())
                .header(header::ACCEPT_ENCODING, "identity")
                .send();
            let failure = match res {
                Ok(resp) if resp.status().is_success() => {
                    let mut s = String::new();
                    match resp.take(limit).read_to_string(&mut s) {
                        Ok(_) => return Ok(s),
                        Err(e) => Failure::Retry(format!("reading the body: {e}"), None),
                    }
                }
                Ok(resp) => status_failure(url, resp),
                Err(e) => request_failure(url, &e),
            };
            match failure {
                Failure::Retry(m, after) if attempt < self.opts.retries => {
                    self.backoff(attempt, after, url, &m);
                    attempt += 1;
                }
                Failure::Retry(m, _) | Failure::Restart(m) => {
                    return Err(ZooError::Transfer {
                        url: url.into(),
                        message: m,
                    });
                }
                Failure::Fatal(e) => return Err(e),
            }
        }
    }

    fn backoff(&self, attempt: u32, after: Option<Duration>, url: &str, why: &str) {
        let exp = self
            .opts
            .retry_delay
            .saturating_mul(1u32 << attempt.min(16));
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let jitter = 0.5 + 0.5 * f64::from(nanos % 1000) / 1000.0;
        let mut delay = exp.min(self.opts.max_retry_delay).mul_f64(jitter);
        if let Some(a) = after {
            delay = delay.max(a.min(self.opts.max_retry_delay));
        }
        tracing::warn!(
            "{url}: {why}; retry {}/{} in {:.1}s",
            attempt + 1,
            self.opts.retries,
            delay.as_secs_f64()
        );
        std::thread::sleep(delay);
    }

    fn progress(&self, label: &str, size: u64) -> Progress {
        Progress::with_mode(
            label.to_string(),
            Some(size),
            if self.opts.progress {
                Mode::auto()
            } else {
                Mode::Hidden
            },
        )
    }

    fn copy_file_url(&self, url: &Url, file: &FileEntry, blob: &Path, label: &str) -> Result<u64> {
        let src = url
            .to_file_path()
            .map_err(|_| ZooError::Other(format!("{url}: not a local path")))?;
        let mut r = fs::File::open(&src).at(&src)?;
        let len = r.metadata().at(&src)?.len();
        if len != file.size {
            return Err(ZooError::Integrity {
                what: format!("{label} from {url}"),
                message: format!("{len} bytes, the registry says {}", file.size),
            });
        }
        let mut p = self.new_partial(blob)?;
        let progress = self.progress(label, file.size);
        let mut buf = vec![0u8; crate::hash::CHUNK];
        let res = (|| loop {
            let n = r.read(&mut buf).at(&src)?;
            if n == 0 {
                return Ok(());
            }
            p.file.write_all(&buf[..n]).at(&p.path)?;
            p.hasher.update(&buf[..n]);
            p.len += n as u64;
            progress.inc(n as u64);
        })();
        progress.finish();
        let res = res.and_then(|()| {
            self.finish(&p, file, blob, &format!("{label} from {url}"))
                .map_err(|(e, _)| e)
        });
        if res.is_err() {
            let _ = fs::remove_file(&p.path);
        }
        res.map(|()| len)
    }

    fn new_partial(&self, blob: &Path) -> Result<Partial> {
        let path = partial_path(blob);
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .at(&path)?;
        Ok(Partial {
            path,
            file,
            len: 0,
            hasher: Sha256::new(),
            validator: None,
            resumed: false,
        })
    }

    /// Takes over a partial of this blob left by a process that no longer runs, if any.
    fn adopt_orphan(&self, blob: &Path, size: u64) -> Option<Partial> {
        let dir = blob.parent()?;
        let prefix = format!("{}.partial-", blob.file_name()?.to_string_lossy());
        let mut best: Option<(u64, PathBuf)> = None;
        for e in fs::read_dir(dir).ok()?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with(&prefix) {
                continue;
            }
            let Some(pid) = crate::util::partial_owner(&name) else {
                continue;
            };
            if crate::util::pid_alive(pid) {
                continue;
            }
            let len = e.metadata().map(|m| m.len()).unwrap_or(0);
            if len > 0 && len < size && best.as_ref().is_none_or(|(l, _)| len > *l) {
                best = Some((len, e.path()));
            }
        }
        let (_, orphan) = best?;
        let path = partial_path(blob);
        // The rename is the claim: of several processes only one can move the orphan.
        fs::rename(&orphan, &path).ok()?;
        let adopt = || -> Result<Partial> {
            let mut file = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .at(&path)?;
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; crate::hash::CHUNK];
            let mut len = 0u64;
            loop {
                let n = file.read(&mut buf).at(&path)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                len += n as u64;
            }
            Ok(Partial {
                path: path.clone(),
                file,
                len,
                hasher,
                validator: None,
                resumed: true,
            })
        };
        match adopt() {
            Ok(p) => {
                tracing::info!(
                    "resuming {} from byte {} (left by an earlier pull)",
                    blob.display(),
                    p.len
                );
                Some(p)
            }
            Err(e) => {
                tracing::debug!("could not adopt {}: {e}", orphan.display());
                let _ = fs::remove_file(&path);
                None
            }
        }
    }

    /// Verifies a complete partial and renames it into place. On failure the partial is deleted
    /// and the error comes with whether the partial had been resumed.
    fn finish(
        &self,
        p: &Partial,
        file: &FileEntry,
        blob: &Path,
        what: &str,
    ) -> std::result::Result<(), (ZooError, bool)> {
        let fail = |e: ZooError| {
            let _ = fs::remove_file(&p.path);
            (e, p.resumed)
        };
        if p.len != file.size {
            return Err(fail(ZooError::Integrity {
                what: what.into(),
                message: format!("{} bytes, the registry says {}", p.len, file.size),
            }));
        }
        let got = hex(&p.hasher.clone().finalize());
        if got != file.sha256 {
            return Err(fail(ZooError::Integrity {
                what: what.into(),
                message: format!(
                    "sha256 {got}, the registry says {} (nothing was cached)",
                    file.sha256
                ),
            }));
        }
        let placed = p.file.sync_all().and_then(|()| {
            let mut perm = p.file.metadata()?.permissions();
            perm.set_readonly(true);
            fs::set_permissions(&p.path, perm)?;
            fs::rename(&p.path, blob)
        });
        if let Err(e) = placed {
            return Err(fail(ZooError::io(blob, e)));
        }
        // Make the rename durable.
        diat_common::atomic::sync_parent(blob);
        Ok(())
    }

    /// Downloads `url` into the blob; returns (bytes transferred, requests sent).
    fn download(
        &self,
        url: &Url,
        file: &FileEntry,
        dir: &Path,
        blob: &Path,
        label: &str,
    ) -> Result<(u64, u32)> {
        let what = format!("{label} from {url}");
        let mut p = match self.adopt_orphan(blob, file.size) {
            Some(p) => p,
            None => self.new_partial(blob)?,
        };
        debug_assert!(p.path.starts_with(dir));
        let mut transferred = 0u64;
        let mut requests = 0u32;
        let mut attempt = 0u32;
        let mut restarts = 0u32;
        let mut integrity_restart_done = false;
        let result = loop {
            if p.len == file.size {
                match self.finish(&p, file, blob, &what) {
                    Ok(()) => break Ok(()),
                    Err((e, resumed)) if resumed && !integrity_restart_done => {
                        tracing::warn!(
                            "{e}; the file had been resumed, downloading it once more from the start"
                        );
                        integrity_restart_done = true;
                        p = self.new_partial(blob)?;
                        continue;
                    }
                    Err((e, _)) => break Err(e),
                }
            }
            let progress = self.progress(label, file.size);
            progress.inc(p.len);
            requests += 1;
            let r = self.attempt(url, file, &mut p, &progress, &mut transferred);
            progress.finish();
            match r {
                Ok(()) => {}
                Err(Failure::Fatal(e)) => break Err(e),
                Err(Failure::Restart(m)) => {
                    restarts += 1;
                    if restarts > 3 {
                        break Err(ZooError::Transfer {
                            url: url.to_string(),
                            message: format!("{m} (restarted 3 times)"),
                        });
                    }
                    tracing::warn!("{url}: {m}; restarting from byte 0");
                    if let Err(e) = p.reset() {
                        break Err(e);
                    }
                }
                Err(Failure::Retry(m, after)) => {
                    if attempt >= self.opts.retries {
                        let m = format!("{m} (gave up after {} attempts)", attempt + 1);
                        break Err(ZooError::Transfer {
                            url: url.to_string(),
                            message: m,
                        });
                    }
                    self.backoff(attempt, after, url.as_str(), &m);
                    attempt += 1;
                }
            }
        };
        if result.is_err() {
            let _ = fs::remove_file(&p.path);
        }
        result.map(|()| (transferred, requests))
    }

    /// One request: continues the partial from `p.len`.
    fn attempt(
        &self,
        url: &Url,
        file: &FileEntry,
        p: &mut Partial,
        progress: &Progress,
        transferred: &mut u64,
    ) -> std::result::Result<(), Failure> {
        let io_fatal = |e: std::io::Error| Failure::Fatal(ZooError::io(&p.path, e));
        p.file.set_len(p.len).map_err(io_fatal)?;
        p.file.seek(SeekFrom::Start(p.len)).map_err(io_fatal)?;
        let mut req = self
            .client(url)
            .get(url.clone())
            .header(header::ACCEPT_ENCODING, "identity");
        let ranged = p.len > 0;
        if ranged {
            req = req.header(header::RANGE, format!("bytes={}-", p.len));
            if let Some(v) = &p.validator {
                req = req.header(header::IF_RANGE, v.as_str());
            }
        }
        let resp = req.send().map_err(|e| request_failure(url.as_str(), &e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        if let Some(enc) = headers
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            && !enc.trim().eq_ignore_ascii_case("identity")
        {
            return Err(Failure::Fatal(ZooError::Transfer {
                url: url.to_string(),
                message: format!(
                    "the server sent Content-Encoding: {enc} despite Accept-Encoding: identity; refusing to cache transformed bytes"
                ),
            }));
        }
        let validator = validator_of(&headers);
        match status {
            StatusCode::OK => {
                if ranged {
                    tracing::info!(
                        "{url}: the server sent the whole file instead of the rest; starting over"
                    );
                    p.reset().map_err(Failure::Fatal)?;
                }
                if let Some(n) = content_length(&headers)
                    && n != file.size
                {
                    return Err(Failure::Fatal(ZooError::Integrity {
                        what: format!("{url}"),
                        message: format!(
                            "the server announces {n} bytes, the registry says {} (nothing was cached)",
                            file.size
                        ),
                    }));
                }
            }
            StatusCode::PARTIAL_CONTENT if ranged => {
                let cr = headers
                    .get(header::CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                match parse_content_range(cr) {
                    Some((start, _end, total))
                        if start == p.len && total.is_none_or(|t| t == file.size) => {}
                    _ => {
                        return Err(Failure::Restart(format!(
                            "Content-Range {cr:?} does not continue byte {}",
                            p.len
                        )));
                    }
                }
                if let (Some(old), Some(new)) = (&p.validator, &validator)
                    && old != new
                {
                    return Err(Failure::Restart("the remote file changed".into()));
                }
            }
            StatusCode::RANGE_NOT_SATISFIABLE if ranged => {
                return Err(Failure::Restart(format!("HTTP 416 for bytes={}-", p.len)));
            }
            _ => return Err(status_failure(url.as_str(), resp)),
        }
        if p.validator.is_none() || status == StatusCode::OK {
            p.validator = validator;
        }
        if ranged && status == StatusCode::PARTIAL_CONTENT {
            p.resumed = true;
        }
        self.stream_body(url, file, resp, p, progress, transferred)
    }

    /// Appends the body to the partial. The sha256 runs on a second thread, fed in 1 MiB
    /// batches, so hashing overlaps the transfer; whatever happens, the hasher has seen exactly
    /// the bytes written to the file when this returns.
    fn stream_body(
        &self,
        url: &Url,
        file: &FileEntry,
        resp: Response,
        p: &mut Partial,
        progress: &Progress,
        transferred: &mut u64,
    ) -> std::result::Result<(), Failure> {
        const BATCH: usize = 1 << 20;
        let mut hasher = std::mem::take(&mut p.hasher);
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        std::thread::scope(|s| {
            let worker = s.spawn(move || {
                for batch in rx {
                    hasher.update(&batch);
                }
                hasher
            });
            let mut pending = Vec::with_capacity(BATCH);
            let result = self.stream_into(
                url,
                file,
                resp,
                p,
                progress,
                transferred,
                &mut |bytes: &[u8]| {
                    pending.extend_from_slice(bytes);
                    if pending.len() >= BATCH {
                        let full = std::mem::replace(&mut pending, Vec::with_capacity(BATCH));
                        let _ = tx.send(full);
                    }
                },
            );
            if !pending.is_empty() {
                let _ = tx.send(pending);
            }
            drop(tx);
            p.hasher = worker.join().expect("the hashing thread does not panic");
            result
        })
    }

    fn stream_into(
        &self,
        url: &Url,
        file: &FileEntry,
        mut resp: Response,
        p: &mut Partial,
        progress: &Progress,
        transferred: &mut u64,
        hash: &mut dyn FnMut(&[u8]),
    ) -> std::result::Result<(), Failure> {
        let mut buf = vec![0u8; 256 << 10];
        let mut window_start = Instant::now();
        let mut window_bytes = 0u64;
        loop {
            let n = match resp.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let kind = if is_timeout_io(&e) {
                        "timed out"
                    } else {
                        "connection error"
                    };
                    return Err(Failure::Retry(
                        format!(
                            "{kind} after {} of {} bytes: {}",
                            p.len,
                            file.size,
                            chain(&e)
                        ),
                        None,
                    ));
                }
            };
            if p.len + n as u64 > file.size {
                return Err(Failure::Fatal(ZooError::Integrity {
                    what: url.to_string(),
                    message: format!(
                        "more than the {} bytes the registry lists (nothing was cached)",
                        file.size
                    ),
                }));
            }
            p.file
                .write_all(&buf[..n])
                .map_err(|e| Failure::Fatal(ZooError::io(&p.path, e)))?;
            hash(&buf[..n]);
            p.len += n as u64;
            *transferred += n as u64;
            progress.inc(n as u64);
            window_bytes += n as u64;
            let elapsed = window_start.elapsed();
            if self.opts.min_speed > 0 && elapsed >= self.opts.speed_window {
                let rate = window_bytes as f64 / elapsed.as_secs_f64();
                if rate < self.opts.min_speed as f64 {
                    return Err(Failure::Retry(
                        format!(
                            "timed out: {rate:.0} B/s over {:.1}s is below the minimum of {} B/s",
                            elapsed.as_secs_f64(),
                            self.opts.min_speed
                        ),
                        None,
                    ));
                }
                window_start = Instant::now();
                window_bytes = 0;
            }
        }
        if p.len < file.size {
            return Err(Failure::Retry(
                format!(
                    "connection closed after {} of {} bytes (truncated body)",
                    p.len, file.size
                ),
                None,
            ));
        }
        Ok(())
    }
}

/// An error's text without the url (or `<label> from <url>`) that leads it: the url is printed
/// beside it already.
fn reason(e: &ZooError, source: &str, label: &str) -> String {
    let text = e.to_string();
    let mut urls = vec![source.to_string()];
    if let Ok(u) = Url::parse(source) {
        urls.push(u.to_string());
    }
    for u in &urls {
        for lead in [format!("{label} from {u}: "), format!("{u}: ")] {
            if let Some(rest) = text.strip_prefix(&lead) {
                return rest.to_string();
            }
        }
    }
    text
}

fn partial_path(blob: &Path) -> PathBuf {
    let name = blob.file_name().unwrap_or_default().to_string_lossy();
    blob.with_file_name(format!("{name}.partial-{}", crate::util::unique_suffix()))
}

fn validator_of(h: &HeaderMap) -> Option<String> {
    let etag = h
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok())
        .filter(|e| !e.starts_with("W/"));
    etag.or_else(|| h.get(header::LAST_MODIFIED).and_then(|v| v.to_str().ok()))
        .map(str::to_string)
}

fn content_length(h: &HeaderMap) -> Option<u64> {
    h.get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// `bytes START-END/TOTAL` (TOTAL may be `*`).
fn parse_content_range(v: &str) -> Option<(u64, u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    let total = if total.trim() == "*" {
        None
    } else {
        Some(total.trim().parse().ok()?)
    };
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?, total))
}

fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let s: u64 = h
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(s))
}

/// A non-success response: retry on 408, 429 and 5xx, fail otherwise. The body is only read for
/// a short excerpt in the message.
fn status_failure(url: &str, resp: Response) -> Failure {
    let status = resp.status();
    let after = retry_after(resp.headers());
    let mut excerpt = Vec::new();
    let _ = resp.take(512).read_to_end(&mut excerpt);
    let body: String = String::from_utf8_lossy(&excerpt)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let body: String = body.chars().take(200).collect();
    let code = status.as_u16();
    if code == 408 || code == 429 || status.is_server_error() {
        Failure::Retry(
            format!(
                "HTTP {code}{}",
                if body.is_empty() {
                    String::new()
                } else {
                    format!(" ({body})")
                }
            ),
            after,
        )
    } else {
        Failure::Fatal(ZooError::Http {
            url: url.to_string(),
            status: code,
            body,
        })
    }
}

/// A request that got no response: redirect refusals and TLS failures are final, the rest
/// (timeouts, refused and reset connections) is retried.
fn request_failure(url: &str, e: &reqwest::Error) -> Failure {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        if let Some(f) = s.downcast_ref::<ForbiddenRedirect>() {
            return Failure::Fatal(ZooError::InsecureUrl {
                url: f.0.clone(),
                message: format!("redirected from {url}: {}", f.1),
            });
        }
        src = s.source();
    }
    let text = chain(e);
    if e.is_builder() || e.is_redirect() {
        return Failure::Fatal(ZooError::Transfer {
            url: url.to_string(),
            message: text,
        });
    }
    let lower = text.to_ascii_lowercase();
    if lower.contains("certificate")
        || lower.contains("tls handshake")
        || lower.contains("invalid dns name")
    {
        return Failure::Fatal(ZooError::Transfer {
            url: url.to_string(),
            message: text,
        });
    }
    let kind = if e.is_timeout() {
        "timed out"
    } else {
        "connection error"
    };
    Failure::Retry(format!("{kind}: {text}"), None)
}

fn is_timeout_io(e: &std::io::Error) -> bool {
    if e.kind() == std::io::ErrorKind::TimedOut {
        return true;
    }
    let mut src = e.get_ref().map(|s| s as &(dyn std::error::Error + 'static));
    while let Some(s) = src {
        if let Some(r) = s.downcast_ref::<reqwest::Error>()
            && r.is_timeout()
        {
            return true;
        }
        src = s.source();
    }
    false
}

/// An error and its sources, `: `-joined (reqwest's top-level messages alone are vague).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_rules() {
        let ok = |u: &str, allow: bool| check_url_allowed(&Url::parse(u).unwrap(), allow).is_ok();
        assert!(ok("https://example.org/x", false));
        assert!(ok("file:///tmp/x", false));
        assert!(ok("http://127.0.0.1:8080/x", false));
        assert!(ok("http://127.3.4.5/x", false));
        assert!(ok("http://localhost/x", false));
        assert!(ok("http://[::1]:9/x", false));
        assert!(!ok("http://example.org/x", false));
        assert!(!ok("http://10.0.0.1/x", false));
        assert!(ok("http://example.org/x", true));
        assert!(!ok("ftp://example.org/x", true));
    }

    #[test]
    fn content_range() {
        assert_eq!(
            parse_content_range("bytes 10-99/100"),
            Some((10, 99, Some(100)))
        );
        assert_eq!(parse_content_range("bytes 10-99/*"), Some((10, 99, None)));
        assert_eq!(parse_content_range("items 1-2/3"), None);
    }
}
