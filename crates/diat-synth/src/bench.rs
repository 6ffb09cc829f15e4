//! Throughput of the renderer: render only, and render + JPEG encode, on one thread and on all
//! threads of the rayon pool; plus the two JPEG encoders side by side.

use crate::face::{FaceSpec, HEIGHT, WIDTH};
use crate::image_io::{Img, encode_jpeg_into};
use crate::layout::Layout;
use crate::render::Renderer;
use rayon::prelude::*;
use serde::Serialize;
use std::time::Instant;

/// Faces per second of one measurement.
#[derive(Debug, Clone, Serialize)]
pub struct Rate {
    pub faces: usize,
    pub seconds: f64,
    pub faces_per_s: f64,
}

impl Rate {
    fn new(faces: usize, seconds: f64) -> Self {
        Self { faces, seconds, faces_per_s: faces as f64 / seconds.max(1e-9) }
    }
}

/// The benchmark report.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub cpu: String,
    pub threads: usize,
    pub jpeg_quality: u8,
    pub render_1t: Rate,
    pub render_encode_1t: Rate,
    pub render_all: Rate,
    pub render_encode_all: Rate,
    /// Encode-only time per face (ms) with `jpeg-encoder` (used) and with the `image` crate.
    pub encode_ms_jpeg_encoder: f64,
    pub encode_ms_image_crate: f64,
}

/// The CPU model from `/proc/cpuinfo` (or "unknown").
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).map(|m| m.trim().to_string()))
        .unwrap_or_else(|| "unknown".into())
}

fn specs(n: usize, seed: u64) -> Vec<FaceSpec> {
    let layout = Layout::new(seed, n.max(1) as u32, 10);
    (0..n as u32).map(|i| FaceSpec::for_image(&layout, i)).collect()
}

/// Renders `n` faces (specs prepared beforehand) in each configuration.
pub fn run(n: usize, quality: u8) -> BenchReport {
    let n = n.max(1);
    let specs = specs(n, 12345);
    let mut r = Renderer::new();
    let mut buf = vec![0u8; WIDTH * HEIGHT * 3];
    // Warm up.
    for s in specs.iter().take(20) {
        r.render_rgb8(s, &mut buf);
    }
    let t = Instant::now();
    for s in &specs {
        r.render_rgb8(s, &mut buf);
    }
    let render_1t = Rate::new(n, t.elapsed().as_secs_f64());

    let mut img = Img::new(WIDTH, HEIGHT, buf.clone());
    let mut jpg = Vec::new();
    let t = Instant::now();
    for s in &specs {
        r.render_rgb8(s, &mut img.data);
        encode_jpeg_into(&img, quality, &mut jpg).expect("encode");
    }
    let render_encode_1t = Rate::new(n, t.elapsed().as_secs_f64());

    let t = Instant::now();
    specs.par_iter().for_each_init(
        || (Renderer::new(), vec![0u8; WIDTH * HEIGHT * 3]),
        |(r, b), s| r.render_rgb8(s, b),
    );
    let render_all = Rate::new(n, t.elapsed().as_secs_f64());

    let t = Instant::now();
    specs.par_iter().for_each_init(
        || (Renderer::new(), Img::new(WIDTH, HEIGHT, vec![0u8; WIDTH * HEIGHT * 3]), Vec::new()),
        |(r, img, jpg), s| {
            r.render_rgb8(s, &mut img.data);
            encode_jpeg_into(img, quality, jpg).expect("encode");
        },
    );
    let render_encode_all = Rate::new(n, t.elapsed().as_secs_f64());

    // Encoders alone on one rendered face.
    r.render_rgb8(&specs[0], &mut img.data);
    let m = (n / 4).clamp(20, 2000);
    let t = Instant::now();
    for _ in 0..m {
        encode_jpeg_into(&img, quality, &mut jpg).expect("encode");
    }
    let encode_ms_jpeg_encoder = t.elapsed().as_secs_f64() * 1e3 / m as f64;
    let t = Instant::now();
    for _ in 0..m {
        jpg.clear();
        let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpg, quality);
        image::ImageEncoder::write_image(enc, &img.data, WIDTH as u32, HEIGHT as u32, image::ExtendedColorType::Rgb8)
            .expect("encode");
    }
    let encode_ms_image_crate = t.elapsed().as_secs_f64() * 1e3 / m as f64;

    BenchReport {
        cpu: cpu_model(),
        threads: rayon::current_num_threads(),
        jpeg_quality: quality,
        render_1t,
        render_encode_1t,
        render_all,
        render_encode_all,
        encode_ms_jpeg_encoder,
        encode_ms_image_crate,
    }
}
