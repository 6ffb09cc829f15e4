//! One FNV-1a hash over the RGB8 bytes of 2,300 rendered faces (three seeds) and the
//! counterfactual twins of every fifth one, for checking that a change to the renderer keeps its
//! output byte for byte: `cargo run --release -p diat-synth --example render_hash`. (On the x86-64
//! AVX2 development machine, before and after the issue-4 speed-ups: `4600 images, hash
//! ed67be7ba5e2f714`; the trigonometry behind the face parameters comes from the platform's libm,
//! so other platforms may print another hash.)
fn main() {
    let mut r = diat_synth::Renderer::new();
    let mut buf = vec![0u8; diat_synth::WIDTH * diat_synth::HEIGHT * 3];
    let mut h: u64 = 0xcbf29ce484222325;
    let mut n = 0;
    for (seed, count) in [(1u64, 1500u32), (42, 500), (7, 300)] {
        let layout = diat_synth::Layout::new(seed, count, 10);
        for i in 0..count {
            let s = diat_synth::FaceSpec::for_image(&layout, i);
            let mut specs = vec![s.clone()];
            if i % 5 == 0 {
                for a in diat_synth::FLIPPABLE {
                    if let Ok(f) = s.flipped(a) {
                        specs.push(f);
                    }
                }
            }
            for s in &specs {
                r.render_rgb8(s, &mut buf);
                for &b in &buf {
                    h = (h ^ b as u64).wrapping_mul(0x100000001b3);
                }
                n += 1;
            }
        }
    }
    println!("{n} images, hash {h:016x}");
}
