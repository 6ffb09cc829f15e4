//! Downloads against a loopback server with scripted faults: every pull either leaves exactly
//! the published bytes in the cache or fails with a clear error, and never leaves a partial.

mod support;

use diat_zoo::cache::GcOptions;
use diat_zoo::hash::sha256_bytes;
use diat_zoo::registry::{Crop, FileEntry, ModelEntry, Preprocessing};
use diat_zoo::{BlobStatus, Cache, FetchOptions, Fetcher, ZooError};
use std::path::Path;
use std::time::{Duration, Instant};
use support::server::{Fault, TestServer};

fn data(n: usize, seed: u8) -> Vec<u8> {
    let mut x = 0x9e37_79b9u32 ^ u32::from(seed);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

fn opts() -> FetchOptions {
    FetchOptions {
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(1),
        min_speed: 16 << 10,
        speed_window: Duration::from_millis(600),
        retries: 3,
        retry_delay: Duration::from_millis(20),
        max_retry_delay: Duration::from_millis(200),
        progress: false,
        ..FetchOptions::default()
    }
}

fn file(role: &str, url: String, body: &[u8]) -> FileEntry {
    FileEntry {
        role: role.into(),
        url,
        mirrors: vec![],
        sha256: sha256_bytes(body),
        size: body.len() as u64,
        format: "safetensors".into(),
    }
}

fn entry(name: &str, version: &str, files: Vec<FileEntry>) -> ModelEntry {
    ModelEntry {
        name: name.into(),
        version: version.parse().unwrap(),
        task: "eyeglasses-add".into(),
        variant: "diat".into(),
        description: None,
        license: "MIT".into(),
        created: "2026-05-01T12:00:00Z".into(),
        data_manifest_sha256: sha256_bytes(b"manifest"),
        yanked: false,
        yanked_reason: None,
        superseded_by: None,
        architecture: toml::Table::new(),
        preprocessing: Preprocessing {
            crop: Crop {
                left: 0,
                top: 20,
                width: 178,
                height: 178,
            },
            size: 128,
            value_range: [-1.0, 1.0],
        },
        metrics: Default::default(),
        files,
    }
}

/// Files in the blob folder other than finished blobs (partials, discards).
fn leftovers(cache: &Cache) -> Vec<String> {
    std::fs::read_dir(cache.blob_dir())
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.len() != 64)
                .collect()
        })
        .unwrap_or_default()
}

fn setup(path: &str, body: &[u8]) -> (TestServer, tempfile::TempDir, Cache, FileEntry) {
    let server = TestServer::start();
    server.serve(path, body.to_vec());
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path().join("zoo/v1"));
    let f = file("transform", server.url(path), body);
    (server, dir, cache, f)
}

fn read_blob(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

#[test]
fn pulls_verifies_caches_and_sends_identity_encoding() {
    let body = data(300_000, 1);
    let (server, _d, cache, f) = setup("/m/t.safetensors", &body);
    let fetcher = Fetcher::new(opts()).unwrap();
    let out = fetcher.fetch(&cache, &f, "m@1.0.0 transform").unwrap();
    assert!(!out.cached);
    assert_eq!(out.transferred, body.len() as u64);
    assert_eq!(read_blob(&out.path), body);
    assert_eq!(out.path, cache.blob_dir().join(&f.sha256));
    assert!(
        std::fs::metadata(&out.path)
            .unwrap()
            .permissions()
            .readonly()
    );
    let seen = server.requests("/m/t.safetensors");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].accept_encoding.as_deref(), Some("identity"));
    assert!(seen[0].range.is_none());
    // Second time: from the cache (rehashed), no request.
    let again = fetcher.fetch(&cache, &f, "m@1.0.0 transform").unwrap();
    assert!(again.cached);
    assert_eq!(server.requests("/m/t.safetensors").len(), 1);
    assert!(leftovers(&cache).is_empty());
}

#[test]
fn connection_reset_mid_body_resumes_with_range() {
    let body = data(400_000, 2);
    let (server, _d, cache, f) = setup("/r", &body);
    server.script("/r", vec![Fault::ResetAfter(150_000)]);
    let out = Fetcher::new(opts())
        .unwrap()
        .fetch(&cache, &f, "reset")
        .unwrap();
    assert_eq!(read_blob(&out.path), body);
    let seen = server.requests("/r");
    assert_eq!(seen.len(), 2, "{seen:?}");
    let range = seen[1].range.as_deref().expect("second request resumes");
    let from: u64 = range
        .strip_prefix("bytes=")
        .unwrap()
        .trim_end_matches('-')
        .parse()
        .unwrap();
    assert!(from > 0 && from <= 150_000, "{range}");
    assert!(seen[1].if_range.is_some(), "resume is guarded by If-Range");
    assert!(out.transferred < body.len() as u64 + 150_000);
    assert!(leftovers(&cache).is_empty());
}

#[test]
fn truncated_body_resumes_from_the_last_byte() {
    let body = data(200_000, 3);
    let (server, _d, cache, f) = setup("/t", &body);
    server.script("/t", vec![Fault::Truncate(77_777)]);
    let out = Fetcher::new(opts())
        .unwrap()
        .fetch(&cache, &f, "trunc")
        .unwrap();
    assert_eq!(read_blob(&out.path), body);
    let seen = server.requests("/t");
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].range.as_deref(), Some("bytes=77777-"));
    assert_eq!(out.transferred, body.len() as u64);
}

#[test]
fn server_errors_are_retried_and_their_bodies_never_cached() {
    let body = data(50_000, 4);
    let (server, _d, cache, f) = setup("/e", &body);
    server.script(
        "/e",
        vec![Fault::Status(500), Fault::Status(503), Fault::Status(429)],
    );
    let out = Fetcher::new(opts())
        .unwrap()
        .fetch(&cache, &f, "5xx")
        .unwrap();
    assert_eq!(read_blob(&out.path), body);
    assert_eq!(server.requests("/e").len(), 4);
    assert_eq!(out.requests, 4);
    // Retries run out: a clear error naming the status, nothing left behind.
    let (server, _d, cache, f) = setup("/e", &body);
    server.script("/e", vec![Fault::Status(502); 10]);
    let e = Fetcher::new(opts())
        .unwrap()
        .fetch(&cache, &f, "5xx")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("HTTP 502") && e.contains("gave up after 4 attempts"),
        "{e}"
    );
    assert_eq!(server.requests("/e").len(), 4);
    assert!(!cache.blob_dir().join(&f.sha256).exists());
    assert!(leftovers(&cache).is_empty(), "{:?}", leftovers(&cache));
}

#[test]
fn not_found_fails_at_once() {
    let body = data(1000, 5);
    let (server, _d, cache, mut f) = setup("/present", &body);
    f.url = server.url("/absent");
    let start = Instant::now();
    let e = Fetcher::new(opts())
        .unwrap()
        .fetch(&cache, &f, "m@1.0.0 transform")
        .unwrap_err();
    assert!(matches!(e, ZooError::Http { status: 404, .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("/absent") && msg.contains("404") && msg.contains("no such file"),
        "{msg}"
    );
    assert_eq!(server.requests("/absent").len(), 1, "404 is not retried");
    assert!(start.elapsed() < Duration::from_secs(2));
    assert!(leftovers(&cache).is_empty());
}

#[test]
fn wrong_hash_is_refused_and_nothing_is_cached() {
    let body = data(64_000, 6);
    let (server, _d, cache, mut f) = setup("/h", &body);
    f.sha256 = sha256_bytes(b"something else");
    let e = Fetcher::new(opts())
        .unwrap()
        .fetch(&cache, &f, "m transform")
        .unwrap_err();
    assert!(e.is_integrity(), "{e}");
    assert!(
        e.to_string().contains(&sha256_bytes(&body)),
        "names the hash it got: {e}"
    );
    assert_eq!(
        server.requests("/h").len(),
        1,
        "a wrong hash is not retried"
    );
    assert!(!cache.blob_dir().join(&f.sha256).exists());
    assert!(!cache.blob_dir().join(sha256_bytes(&body)).exists());
    assert!(leftovers(&cache).is_empty());
    // A size that disagrees with Content-Length fails before the body is read.
    f.sha256 = sha256_bytes(&body);
    f.size += 1;
    let e = Fetcher::new(opts())
        .unwrap()
        .fetch(&cache, &f, "m transform")
        .unwrap_err();
    assert!(
        e.is_integrity() && e.to_string().contains("announces"),
        "{e}"
    );
}

#[test]
fn slow_trickle_and_stall_hit_the_timeout() {
    let body = data(100_000, 7);
    let (server, _d, cache, f) = setup("/slow", &body);
    let trickle = Fault::Trickle {
        chunk: 512,
        every: Duration::from_millis(100),
    };
    let mut o = opts();
    o.retries = 1;
    server.script("/slow", vec![trickle.clone(), trickle]);
    let start = Instant::now();
    let e = Fetcher::new(o.clone())
        .unwrap()
        .fetch(&cache, &f, "slow")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("timed out") && e.contains("below the minimum"),
        "{e}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(server.requests("/slow").len(), 2);
    assert!(leftovers(&cache).is_empty());
    // No byte at all for longer than read_timeout; then a good response completes the file.
    server.script("/slow", vec![Fault::Stall(Duration::from_secs(3))]);
    let start = Instant::now();
    let out = Fetcher::new(o).unwrap().fetch(&cache, &f, "stall").unwrap();
    assert_eq!(read_blob(&out.path), body);
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn redirect_to_plain_http_is_refused_but_loopback_redirects_work() {
    let body = data(10_000, 8);
    let (server, _d, cache, f) = setup("/redir", &body);
    server.script(
        "/redir",
        vec![Fault::Redirect("http://diat-zoo-test.invalid/x".into())],
    );
    let e = Fetcher::new(opts())
        .unwrap()
        .fetch(&cache, &f, "redir")
        .unwrap_err();
    assert!(matches!(e, ZooError::InsecureUrl { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("http://diat-zoo-test.invalid/x") && msg.contains("plain http"),
        "{msg}"
    );
    assert_eq!(server.total_requests(), 1, "not retried");
    // Loopback to loopback is fine.
    server.serve("/target", body.clone());
    server.script("/redir", vec![Fault::Redirect(server.url("/target"))]);
    let out = Fetcher::new(opts())
        .unwrap()
        .fetch(&cache, &f, "redir")
        .unwrap();
    assert_eq!(read_blob(&out.path), body);
    // A plain-http first url to a remote host is refused without a request.
    let mut remote = f.clone();
    remote.url = "http://diat-zoo-test.invalid/y".into();
    remote.sha256 = sha256_bytes(b"other");
    let e = Fetcher::new(opts())
        .unwrap()
        .fetch(&cache, &remote, "remote")
        .unwrap_err();
    assert!(matches!(e, ZooError::InsecureUrl { .. }), "{e}");
}

#[test]
fn range_not_satisfiable_and_changed_remote_restart_cleanly() {
    let body = data(300_000, 9);
    let (server, _d, cache, f) = setup("/416", &body);
    server.script("/416", vec![Fault::ResetAfter(100_000), Fault::Status416]);
    let out = Fetcher::new(opts())
        .unwrap()
        .fetch(&cache, &f, "416")
        .unwrap();
    assert_eq!(read_blob(&out.path), body);
    let seen = server.requests("/416");
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(
        seen[1].range.is_some() && seen[2].range.is_none(),
        "{seen:?}"
    );

    // The first response is an older file (another ETag); the resumed request carries If-Range
    // with that ETag, the server answers 200 with the new file, and the download starts over.
    let old = data(300_000, 10);
    let server = TestServer::start();
    server.serve("/changed", old);
    let mut f2 = f.clone();
    f2.url = server.url("/changed");
    let cache2 = Cache::new(_d.path().join("other"));
    server.script(
        "/changed",
        vec![
            Fault::ResetAfter(120_000),
            Fault::Replace(body.clone(), "\"v2\"".into()),
        ],
    );
    let out = Fetcher::new(opts())
        .unwrap()
        .fetch(&cache2, &f2, "changed")
        .unwrap();
    assert_eq!(read_blob(&out.path), body);
    let seen = server.requests("/changed");
    assert_eq!(seen.len(), 2);
    assert!(seen[1].if_range.is_some());
    assert!(leftovers(&cache2).is_empty());

    // A server that ignores Range (200 with everything) also restarts cleanly.
    let server = TestServer::start();
    server.serve("/norange", body.clone());
    let mut f3 = f.clone();
    f3.url = server.url("/norange");
    let cache3 = Cache::new(_d.path().join("third"));
    server.script(
        "/norange",
        vec![Fault::ResetAfter(90_000), Fault::IgnoreRange],
    );
    let out = Fetcher::new(opts())
        .unwrap()
        .fetch(&cache3, &f3, "norange")
        .unwrap();
    assert_eq!(read_blob(&out.path), body);
}

#[test]
fn compressed_responses_are_refused() {
    let body = data(5_000, 11);
    let (server, _d, cache, f) = setup("/gz", &body);
    server.script("/gz", vec![Fault::Gzip]);
    let e = Fetcher::new(opts())
        .unwrap()
        .fetch(&cache, &f, "gz")
        .unwrap_err()
        .to_string();
    assert!(e.contains("Content-Encoding: gzip"), "{e}");
    assert!(leftovers(&cache).is_empty());
}

#[test]
fn mirrors_are_tried_in_order() {
    let body = data(20_000, 12);
    let (server, _d, cache, mut f) = setup("/mirror", &body);
    f.url = server.url("/gone");
    f.mirrors = vec![
        "http://diat-zoo-test.invalid/insecure".into(),
        server.url("/mirror"),
    ];
    let out = Fetcher::new(opts())
        .unwrap()
        .fetch(&cache, &f, "mirror")
        .unwrap();
    assert_eq!(out.source.as_deref(), Some(server.url("/mirror").as_str()));
    // All failing: every source's error is listed.
    f.mirrors.pop();
    let cache = Cache::new(_d.path().join("again"));
    let e = Fetcher::new(opts())
        .unwrap()
        .fetch(&cache, &f, "mirror")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("every source failed") && e.contains("404") && e.contains("plain http"),
        "{e}"
    );
}

/// Two servers on their own ports: the file's `url` on `a` (serving nothing yet), its one mirror
/// on `b` (serving `body`), both at `path`.
fn two_servers(
    path: &str,
    body: &[u8],
) -> (TestServer, TestServer, tempfile::TempDir, Cache, FileEntry) {
    let a = TestServer::start();
    let b = TestServer::start();
    b.serve(path, body.to_vec());
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path().join("zoo/v1"));
    let mut f = file("transform", a.url(path), body);
    f.mirrors = vec![b.url(path)];
    (a, b, dir, cache, f)
}

/// The names in the blob folder.
fn blob_names(cache: &Cache) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(cache.blob_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_dead_first_url_is_reported_and_the_mirror_on_another_server_is_used() {
    let start = Instant::now();
    let body = data(50_000, 20);
    let (a, b, _d, cache, f) = two_servers("/m/transform.safetensors", &body);
    assert_ne!(a.url("/"), b.url("/"), "two servers, two ports");
    let m = entry("mirrored", "1.0.0", vec![f.clone()]);
    let fetcher = Fetcher::new(opts()).unwrap();
    let (installed, outcomes) = diat_zoo::pull(&m, &cache, &fetcher).unwrap();
    let out = &outcomes[0];
    assert!(!out.cached);
    assert_eq!(out.source.as_deref(), Some(f.mirrors[0].as_str()));
    assert_eq!(read_blob(&out.path), body);
    assert_eq!(out.failed_sources.len(), 1, "{:?}", out.failed_sources);
    let failed = &out.failed_sources[0];
    assert_eq!(failed.url, f.url);
    assert_eq!((failed.index, failed.of), (1, 2));
    assert!(failed.error.contains("HTTP 404"), "{failed:?}");
    assert_eq!(
        a.requests("/m/transform.safetensors").len(),
        1,
        "404 is not retried"
    );
    assert_eq!(b.requests("/m/transform.safetensors").len(), 1);
    assert!(leftovers(&cache).is_empty());
    // What `diat zoo pull` prints names the dead source, why, and where the bytes came from.
    let resolved = diat_zoo::Resolved {
        id: m.id(),
        entry: Some(m.clone()),
        dir: installed.dir.clone(),
        files: installed.files.clone(),
        fetched: outcomes.clone(),
    };
    let text = resolved.to_string();
    let line = format!(
        "  transform: source 1 of 2 ({}) failed: HTTP 404 (no such file); fetched from {}\n",
        f.url, f.mirrors[0]
    );
    assert!(text.contains(&line), "{text}");
    // --json carries them too.
    let json = serde_json::to_value(out).unwrap();
    assert_eq!(json["failed_sources"][0]["url"], f.url.as_str());
    // From the cache next time: nothing failed, nothing to report.
    let (_, again) = diat_zoo::pull(&m, &cache, &fetcher).unwrap();
    assert!(again[0].cached && again[0].failed_sources.is_empty());
    assert!(again[0].fallback_note().is_none());
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_first_server_that_always_truncates_falls_through_to_the_second() {
    let start = Instant::now();
    let body = data(150_000, 21);
    let (a, b, _d, cache, f) = two_servers("/t", &body);
    a.serve("/t", body.clone());
    // Every response stops at byte 60 000 of the file: the first gets that far, each resumed
    // request gets no byte, and the retries run out.
    a.script("/t", vec![Fault::TruncateAt(60_000); 10]);
    let out = Fetcher::new(opts())
        .unwrap()
        .fetch(&cache, &f, "m@1.0.0 transform")
        .unwrap();
    assert_eq!(out.source.as_deref(), Some(b.url("/t").as_str()));
    assert_eq!(read_blob(&out.path), body);
    let seen = a.requests("/t");
    assert_eq!(seen.len(), 4, "the first try and 3 retries: {seen:?}");
    assert_eq!(seen[1].range.as_deref(), Some("bytes=60000-"), "resumed");
    assert_eq!(b.requests("/t").len(), 1);
    assert!(
        b.requests("/t")[0].range.is_none(),
        "the mirror starts from byte 0, not from the first server's partial"
    );
    assert_eq!(out.failed_sources.len(), 1);
    let failed = &out.failed_sources[0];
    assert_eq!(failed.url, a.url("/t"));
    assert!(
        failed.error.contains("after 60000 of 150000 bytes")
            && failed.error.contains("gave up after 4 attempts"),
        "{failed:?}"
    );
    let note = out.fallback_note().unwrap();
    assert!(
        note.starts_with(&format!("source 1 of 2 ({}) failed: ", a.url("/t")))
            && note.ends_with(&format!("; fetched from {}", b.url("/t"))),
        "{note}"
    );
    assert!(leftovers(&cache).is_empty(), "{:?}", leftovers(&cache));
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_mirror_with_other_bytes_is_reported_and_never_cached() {
    let start = Instant::now();
    let body = data(120_000, 22);
    let (a, b, d, cache, f) = two_servers("/h", &body);
    // Same size, other bytes: only the sha256 tells them apart.
    a.serve("/h", data(120_000, 23));
    let out = Fetcher::new(opts())
        .unwrap()
        .fetch(&cache, &f, "m@1.0.0 transform")
        .unwrap();
    assert_eq!(out.source.as_deref(), Some(b.url("/h").as_str()));
    assert_eq!(read_blob(&out.path), body);
    assert_eq!(a.requests("/h").len(), 1, "a wrong hash is not retried");
    let failed = &out.failed_sources[0];
    assert_eq!(failed.url, a.url("/h"));
    assert!(
        failed.error.contains("sha256") && failed.error.contains("nothing was cached"),
        "{failed:?}"
    );
    assert_eq!(
        blob_names(&cache),
        vec![f.sha256.clone()],
        "only the verified blob"
    );
    assert!(leftovers(&cache).is_empty());
    assert!(cache.verify(None).unwrap().ok());

    // Another size (a longer and a shorter file): refused on the announced length, next tried.
    for (path, wrong) in [("/long", data(120_001, 24)), ("/short", data(119_999, 25))] {
        let cache = Cache::new(d.path().join(path.trim_start_matches('/')));
        a.serve(path, wrong);
        b.serve(path, body.clone());
        let mut f = f.clone();
        f.url = a.url(path);
        f.mirrors = vec![b.url(path)];
        let out = Fetcher::new(opts())
            .unwrap()
            .fetch(&cache, &f, "m@1.0.0 transform")
            .unwrap();
        assert_eq!(out.source.as_deref(), Some(b.url(path).as_str()));
        assert_eq!(read_blob(&out.path), body);
        let failed = &out.failed_sources[0];
        assert!(
            failed.url == a.url(path) && failed.error.contains("announces"),
            "{failed:?}"
        );
        assert_eq!(blob_names(&cache), vec![f.sha256.clone()]);
    }

    // Both serve the wrong bytes: the pull fails, naming both, and the cache holds nothing.
    let cache = Cache::new(d.path().join("both-wrong"));
    b.serve("/h", data(120_000, 26));
    let e = Fetcher::new(opts())
        .unwrap()
        .fetch(&cache, &f, "m@1.0.0 transform")
        .unwrap_err();
    assert!(e.is_integrity(), "{e}");
    assert!(blob_names(&cache).is_empty(), "{:?}", blob_names(&cache));
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn when_every_source_is_dead_the_error_lists_each_url() {
    let start = Instant::now();
    let body = data(30_000, 27);
    let (a, b, _d, cache, f) = two_servers("/dead", &body);
    // `a` has no such file (404); `b` fails with 503 until the retries run out.
    b.script("/dead", vec![Fault::Status(503); 10]);
    let e = Fetcher::new(opts())
        .unwrap()
        .fetch(&cache, &f, "m@1.0.0 transform")
        .unwrap_err();
    let ZooError::AllSourcesFailed { what, errors } = &e else {
        panic!("{e}");
    };
    assert_eq!(what, "m@1.0.0 transform");
    assert_eq!(errors.len(), 2);
    let msg = e.to_string();
    assert!(
        msg.contains("every source failed")
            && msg.contains(&format!("{}: HTTP 404", a.url("/dead")))
            && msg.contains(&b.url("/dead"))
            && msg.contains("HTTP 503")
            && msg.contains("gave up after 4 attempts"),
        "{msg}"
    );
    assert!(
        msg.find(&a.url("/dead")) < msg.find(&b.url("/dead")),
        "in the order tried: {msg}"
    );
    assert_eq!(a.requests("/dead").len(), 1);
    assert_eq!(b.requests("/dead").len(), 4);
    assert!(!cache.blob_dir().join(&f.sha256).exists());
    assert!(leftovers(&cache).is_empty());
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn two_concurrent_pulls_of_one_file_both_succeed() {
    let body = data(1_500_000, 13);
    let (server, _d, cache, f) = setup("/both", &body);
    let slow = Fault::Trickle {
        chunk: 64 << 10,
        every: Duration::from_millis(15),
    };
    server.script("/both", vec![slow.clone(), slow]);
    let m = entry("both", "1.0.0", vec![f.clone()]);
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let (cache, m) = (cache.clone(), m.clone());
                s.spawn(move || {
                    let fetcher = Fetcher::new(opts()).unwrap();
                    diat_zoo::pull(&m, &cache, &fetcher).unwrap()
                })
            })
            .collect();
        for h in hs {
            let (installed, outcomes) = h.join().unwrap();
            assert_eq!(std::fs::read(&installed.files["transform"]).unwrap(), body);
            assert_eq!(outcomes.len(), 1);
        }
    });
    assert_eq!(
        server.requests("/both").len(),
        2,
        "both downloaded at the same time"
    );
    assert_eq!(read_blob(&cache.blob_dir().join(&f.sha256)), body);
    assert!(leftovers(&cache).is_empty(), "{:?}", leftovers(&cache));
    assert!(cache.verify(None).unwrap().ok());
    assert_eq!(cache.installed().unwrap().len(), 1);
}

#[test]
fn offline_names_the_missing_file_and_the_cache_path() {
    let body = data(8_000, 14);
    let (server, _d, cache, f) = setup("/off", &body);
    let offline = FetchOptions {
        offline: true,
        ..opts()
    };
    let e = Fetcher::new(offline.clone())
        .unwrap()
        .fetch(&cache, &f, "m@1.0.0 transform")
        .unwrap_err();
    assert!(matches!(e, diat_zoo::ZooError::Offline { .. }), "{e}");
    let msg = e.to_string();
    let blob = cache.blob_dir().join(&f.sha256);
    assert!(
        msg.contains("m@1.0.0 transform") && msg.contains(&blob.display().to_string()),
        "{msg}"
    );
    assert_eq!(
        server.total_requests(),
        0,
        "offline never touches the network"
    );
    Fetcher::new(opts())
        .unwrap()
        .fetch(&cache, &f, "m@1.0.0 transform")
        .unwrap();
    let out = Fetcher::new(offline)
        .unwrap()
        .fetch(&cache, &f, "m@1.0.0 transform")
        .unwrap();
    assert!(out.cached);
    assert_eq!(server.total_requests(), 1);
}

#[test]
fn corrupted_cache_entry_is_detected_by_verify_and_repaired_by_pull() {
    let body = data(120_000, 15);
    let (server, _d, cache, f) = setup("/c", &body);
    let m = entry("corrupt", "1.0.0", vec![f.clone()]);
    let fetcher = Fetcher::new(opts()).unwrap();
    diat_zoo::pull(&m, &cache, &fetcher).unwrap();
    assert!(cache.verify(None).unwrap().ok());
    let blob = cache.blob_dir().join(&f.sha256);
    let mut perm = std::fs::metadata(&blob).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perm.set_readonly(false);
    std::fs::set_permissions(&blob, perm).unwrap();
    let mut bytes = body.clone();
    bytes[1234] ^= 0xff;
    std::fs::write(&blob, &bytes).unwrap();
    let report = cache.verify(None).unwrap();
    assert!(!report.ok());
    assert!(
        matches!(report.blobs[0].status, BlobStatus::WrongHash { .. }),
        "{report:?}"
    );
    assert_eq!(
        report.blobs[0].used_by,
        vec!["corrupt@1.0.0 transform".to_string()]
    );
    let (installed, outcomes) = diat_zoo::pull(&m, &cache, &fetcher).unwrap();
    assert!(!outcomes[0].cached, "the corrupt blob was fetched again");
    assert_eq!(std::fs::read(&installed.files["transform"]).unwrap(), body);
    assert!(cache.verify(None).unwrap().ok());
    assert_eq!(server.requests("/c").len(), 2);
    // A truncated blob (wrong size) is caught the same way.
    std::fs::remove_file(&blob).unwrap();
    std::fs::write(&blob, &body[..1000]).unwrap();
    assert!(matches!(
        cache.verify(None).unwrap().blobs[0].status,
        BlobStatus::WrongSize { .. }
    ));
    diat_zoo::pull(&m, &cache, &fetcher).unwrap();
    assert!(cache.verify(None).unwrap().ok());
}

#[test]
fn a_dead_process_partial_is_adopted_and_resumed() {
    let body = data(200_000, 16);
    let (server, _d, cache, f) = setup("/orphan", &body);
    std::fs::create_dir_all(cache.blob_dir()).unwrap();
    // pid 4194304 is above Linux's pid_max ceiling, so it never runs.
    let orphan = cache
        .blob_dir()
        .join(format!("{}.partial-4194304-0x0", f.sha256));
    std::fs::write(&orphan, &body[..60_000]).unwrap();
    let out = Fetcher::new(opts())
        .unwrap()
        .fetch(&cache, &f, "orphan")
        .unwrap();
    assert_eq!(read_blob(&out.path), body);
    if cfg!(target_os = "linux") {
        assert_eq!(
            server.requests("/orphan")[0].range.as_deref(),
            Some("bytes=60000-")
        );
        assert_eq!(out.transferred, 140_000);
    }
    assert!(leftovers(&cache).is_empty());
    // A garbage orphan (wrong bytes) costs one more full download, never a wrong blob.
    let cache = Cache::new(_d.path().join("second"));
    std::fs::create_dir_all(cache.blob_dir()).unwrap();
    std::fs::write(
        cache
            .blob_dir()
            .join(format!("{}.partial-4194304-0x1", f.sha256)),
        vec![0u8; 60_000],
    )
    .unwrap();
    let out = Fetcher::new(opts())
        .unwrap()
        .fetch(&cache, &f, "orphan")
        .unwrap();
    assert_eq!(read_blob(&out.path), body);
    assert!(leftovers(&cache).is_empty());
}

#[test]
fn rm_and_gc_keep_shared_blobs_and_drop_garbage() {
    let shared = data(10_000, 17);
    let own_a = data(11_000, 18);
    let own_b = data(12_000, 19);
    let server = TestServer::start();
    for (p, b) in [("/s", &shared), ("/a", &own_a), ("/b", &own_b)] {
        server.serve(p, b.clone());
    }
    let d = tempfile::tempdir().unwrap();
    let cache = Cache::new(d.path().join("zoo"));
    let fetcher = Fetcher::new(opts()).unwrap();
    let mut ea = entry(
        "a",
        "1.0.0",
        vec![file("transform", server.url("/a"), &own_a)],
    );
    ea.files.push(file("enhance", server.url("/s"), &shared));
    let mut eb = entry(
        "b",
        "2.0.0",
        vec![file("transform", server.url("/b"), &own_b)],
    );
    eb.files.push(file("enhance", server.url("/s"), &shared));
    diat_zoo::pull(&ea, &cache, &fetcher).unwrap();
    diat_zoo::pull(&eb, &cache, &fetcher).unwrap();
    assert_eq!(
        server.requests("/s").len(),
        1,
        "a shared blob is stored once"
    );
    let r = cache.remove(&"a".parse_ref()).unwrap();
    assert_eq!(r.removed_models, vec!["a@1.0.0"]);
    assert_eq!(r.removed_blobs, vec![sha256_bytes(&own_a)]);
    assert!(cache.blob_dir().join(sha256_bytes(&shared)).exists());
    assert!(
        cache.remove(&"a".parse_ref()).is_err(),
        "removing twice names the model"
    );
    // Garbage: an unreferenced blob, a partial of a dead process, a half-built model folder.
    std::fs::write(cache.blob_dir().join(sha256_bytes(b"stray")), b"stray").unwrap();
    let partial = cache
        .blob_dir()
        .join(format!("{}.partial-4194304-1x2", sha256_bytes(b"x")));
    std::fs::write(&partial, b"half").unwrap();
    let mine = cache.blob_dir().join(format!(
        "{}.partial-{}-1x2",
        sha256_bytes(b"y"),
        std::process::id()
    ));
    std::fs::write(&mine, b"in progress").unwrap();
    std::fs::create_dir_all(cache.refs_dir().join("b/.3.0.0.partial-4194304-7x1")).unwrap();
    let recent = cache.gc(GcOptions::default()).unwrap();
    assert!(
        recent.removed_blobs.is_empty() && recent.kept_recent.len() == 1,
        "{recent:?}"
    );
    let dry = cache
        .gc(GcOptions {
            dry_run: true,
            keep_recent: Duration::ZERO,
        })
        .unwrap();
    assert_eq!(dry.removed_blobs.len(), 1);
    assert!(cache.blob_dir().join(sha256_bytes(b"stray")).exists());
    let r = cache
        .gc(GcOptions {
            dry_run: false,
            keep_recent: Duration::ZERO,
        })
        .unwrap();
    assert_eq!(r.removed_blobs, vec![sha256_bytes(b"stray")]);
    assert!(
        !partial.exists() && mine.exists(),
        "only a dead process's partial goes"
    );
    assert!(
        !cache
            .refs_dir()
            .join("b/.3.0.0.partial-4194304-7x1")
            .exists()
    );
    assert!(cache.verify(None).unwrap().ok());
    assert_eq!(cache.installed().unwrap().len(), 1);
    cache.remove(&"b@2.0.0".parse_ref()).unwrap();
    assert!(cache.installed().unwrap().is_empty());
    assert!(!cache.refs_dir().join("b").exists());
}

trait ParseRef {
    fn parse_ref(&self) -> diat_zoo::ModelRef;
}

impl ParseRef for str {
    fn parse_ref(&self) -> diat_zoo::ModelRef {
        diat_zoo::ModelRef::parse(self).unwrap()
    }
}
