//! Renders N faces in a loop (for profilers): `cargo run --release -p diat-synth --example prof_render -- 300`.
fn main() {
    let n: u32 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(300);
    let layout = diat_synth::Layout::new(1, n, 10);
    let mut r = diat_synth::Renderer::new();
    let mut buf = vec![0u8; diat_synth::WIDTH * diat_synth::HEIGHT * 3];
    for i in 0..n {
        r.render_rgb8(&diat_synth::FaceSpec::for_image(&layout, i), &mut buf);
    }
    println!("{}", buf.iter().map(|&b| b as u64).sum::<u64>());
}
