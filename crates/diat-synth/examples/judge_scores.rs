//! Diagnostic for the attribute judge: score distributions of each detector on counterfactual
//! pairs (attribute off / on, everything else identical), at 178×218 and 128×128, with the best
//! threshold, its accuracy and the misclassified images. Use it when changing the renderer.
//!
//! `cargo run --release -p diat-synth --example judge_scores -- [pairs=300] [seed=99]`
use diat_synth::judge::{Frame, as_stored, best_threshold, score};
use diat_synth::{FLIPPABLE, FaceSpec, Layout, Renderer};
fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let seed: u64 = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(99);
    let layout = Layout::new(seed, n, 3);
    let mut r = Renderer::new();
    for frame in [Frame::FULL, Frame::celeba_128()] {
        for attr in FLIPPABLE {
            let mut sc = Vec::new();
            let mut worst = Vec::new();
            for i in 0..n {
                let spec = FaceSpec::for_image(&layout, i);
                for on in [false, true] {
                    let s = spec.with(attr, on).unwrap();
                    let img = frame.apply(&as_stored(&mut r, &s, 90));
                    let v = score(attr, &img, frame, &s.landmarks()).unwrap();
                    sc.push((v, on));
                    worst.push((v, on, i));
                }
            }
            let (t, acc) = best_threshold(&sc);
            let neg: Vec<f32> = sc.iter().filter(|x| !x.1).map(|x| x.0).collect();
            let pos: Vec<f32> = sc.iter().filter(|x| x.1).map(|x| x.0).collect();
            let q = |v: &[f32], p: f32| {
                let mut v = v.to_vec();
                v.sort_by(f32::total_cmp);
                v[((v.len() - 1) as f32 * p) as usize]
            };
            let wrong: Vec<_> = worst
                .iter()
                .filter(|(v, on, _)| (*v > t) != *on)
                .map(|(v, on, i)| format!("{i}:{}:{v:.3}", if *on { "+" } else { "-" }))
                .take(8)
                .collect();
            println!(
                "{:?} {:<20} thr {t:.3} acc {acc:.4} | neg p50 {:.3} p99 {:.3} max {:.3} | pos min {:.3} p01 {:.3} p50 {:.3} | wrong {:?}",
                frame.w,
                attr.name(),
                q(&neg, 0.5),
                q(&neg, 0.99),
                q(&neg, 1.0),
                q(&pos, 0.0),
                q(&pos, 0.01),
                q(&pos, 0.5),
                wrong
            );
        }
    }
}
