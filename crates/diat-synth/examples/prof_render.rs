//! Renders N faces in a loop (for profilers): `cargo run --release -p diat-synth --example prof_render -- 300`.
fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let layout = diat_synth::Layout::new(1, n, 10);
    let mut r = diat_synth::Renderer::new();
    let mut buf = vec![0u8; diat_synth::WIDTH * diat_synth::HEIGHT * 3];
    let specs: Vec<_> = (0..n)
        .map(|i| diat_synth::FaceSpec::for_image(&layout, i))
        .collect();
    let t = std::time::Instant::now();
    let mut check = 0u64;
    for s in &specs {
        r.render_rgb8(s, &mut buf);
        check = check
            .wrapping_mul(31)
            .wrapping_add(buf.iter().map(|&b| b as u64).sum::<u64>());
    }
    let ms = t.elapsed().as_secs_f64() * 1e3 / n as f64;
    println!("{ms:.3} ms/face (checksum {check})");
}
