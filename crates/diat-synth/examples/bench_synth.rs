//! The synthetic-face throughput benchmark (the same as `diat bench synth`) without the `diat`
//! binary: `cargo run --release -p diat-synth --example bench_synth -- [faces] [quality] [threads]`.
fn main() {
    let mut args = std::env::args().skip(1);
    let faces: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(2000);
    let quality: u8 = args.next().and_then(|s| s.parse().ok()).unwrap_or(90);
    let threads: Option<usize> = args.next().and_then(|s| s.parse().ok());
    let (r, _) = diat_synth::with_threads(threads, || diat_synth::bench::run(faces, quality))
        .expect("thread pool");
    println!("{}", serde_json::to_string_pretty(&r).expect("json"));
}
