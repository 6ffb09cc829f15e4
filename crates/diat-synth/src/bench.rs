//! Throughput of the renderer: render only, and render + JPEG encode, on one thread and on all
//! threads of the rayon pool; plus the JPEG encoders side by side (this crate's [`crate::jpeg`],
//! which the dataset writer uses, the `jpeg-encoder` crate and the `image` crate), on the same
//! rendered faces in the same run.

use crate::face::{FaceSpec, HEIGHT, WIDTH};
use crate::image_io::{Img, encode_jpeg_crate_into, encode_jpeg_into};
use crate::layout::Layout;
use crate::render::Renderer;
use rayon::prelude::*;
use serde::Serialize;
use std::time::Instant;

/// Faces per second of one measurement: per wall-clock second, and per CPU-second of this
/// process's threads (which stays meaningful when other processes compete for the cores).
#[derive(Debug, Clone, Serialize)]
pub struct Rate {
    pub faces: usize,
    pub seconds: f64,
    pub faces_per_s: f64,
    /// CPU time of all threads of this process during the measurement (None where unavailable).
    pub cpu_seconds: Option<f64>,
    pub faces_per_cpu_s: Option<f64>,
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
    /// The encoder used for `render_encode_*` (this crate's [`crate::jpeg`]) and its code path.
    pub encoder: String,
    /// Encode-only time per face (ms) with the encoder used, with the `jpeg-encoder` crate and with
    /// the `image` crate (same faces, same quality, 4:2:0 for the first two; the `image` crate
    /// chooses its own subsampling).
    pub encode_ms: f64,
    pub encode_ms_jpeg_encoder: f64,
    pub encode_ms_image_crate: f64,
    /// Mean JPEG size (bytes) per face with each encoder, in the same order.
    pub jpeg_bytes: f64,
    pub jpeg_bytes_jpeg_encoder: f64,
    pub jpeg_bytes_image_crate: f64,
}

/// CPU time (ns) used so far by all threads of this process, from `/proc/self/task/*/schedstat`.
fn cpu_ns() -> Option<u64> {
    let mut total = 0u64;
    for e in std::fs::read_dir("/proc/self/task").ok()? {
        let p = e.ok()?.path().join("schedstat");
        let s = std::fs::read_to_string(p).ok()?;
        total += s.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

/// Measures `f`, which renders `faces` faces.
fn measure(faces: usize, f: impl FnOnce()) -> Rate {
    let c0 = cpu_ns();
    let t = Instant::now();
    f();
    let seconds = t.elapsed().as_secs_f64();
    let cpu_seconds = c0
        .zip(cpu_ns())
        .map(|(a, b)| b.saturating_sub(a) as f64 / 1e9);
    Rate {
        faces,
        seconds,
        faces_per_s: faces as f64 / seconds.max(1e-9),
        cpu_seconds,
        faces_per_cpu_s: cpu_seconds.map(|c| faces as f64 / c.max(1e-9)),
    }
}

/// Renders `n` faces (specs prepared beforehand) in each configuration.
pub fn run(n: usize, quality: u8) -> BenchReport {
    let n = n.max(1);
    let layout = Layout::new(12345, n as u32, 10);
    let specs: Vec<FaceSpec> = (0..n as u32)
        .map(|i| FaceSpec::for_image(&layout, i))
        .collect();
    let mut r = Renderer::new();
    let mut img = Img::new(WIDTH, HEIGHT, vec![0u8; WIDTH * HEIGHT * 3]);
    let mut jpg = Vec::new();
    // Warm up.
    for s in specs.iter().take(20) {
        r.render_rgb8(s, &mut img.data);
        encode_jpeg_into(&img, quality, &mut jpg).expect("encode");
    }
    let render_1t = measure(n, || {
        for s in &specs {
            r.render_rgb8(s, &mut img.data);
        }
    });
    let render_encode_1t = measure(n, || {
        for s in &specs {
            r.render_rgb8(s, &mut img.data);
            encode_jpeg_into(&img, quality, &mut jpg).expect("encode");
        }
    });
    let render_all = measure(n, || {
        specs.par_iter().for_each_init(
            || (Renderer::new(), vec![0u8; WIDTH * HEIGHT * 3]),
            |(r, b), s| r.render_rgb8(s, b),
        )
    });
    let render_encode_all = measure(n, || {
        specs.par_iter().for_each_init(
            || {
                (
                    Renderer::new(),
                    Img::new(WIDTH, HEIGHT, vec![0u8; WIDTH * HEIGHT * 3]),
                    Vec::new(),
                )
            },
            |(r, img, jpg), s| {
                r.render_rgb8(s, &mut img.data);
                encode_jpeg_into(img, quality, jpg).expect("encode");
            },
        )
    });

    // Encoders alone, cycling over up to 64 rendered faces (all three see the same faces).
    let faces: Vec<Img> = specs
        .iter()
        .take(64)
        .map(|s| {
            let mut f = Img::new(WIDTH, HEIGHT, vec![0u8; WIDTH * HEIGHT * 3]);
            r.render_rgb8(s, &mut f.data);
            f
        })
        .collect();
    let m = (n / 4).clamp(20, 2000);
    let time_encoder = |enc: &dyn Fn(&Img, &mut Vec<u8>)| {
        let mut jpg = Vec::new();
        let mut bytes = 0usize;
        let t = Instant::now();
        for i in 0..m {
            enc(&faces[i % faces.len()], &mut jpg);
            bytes += jpg.len();
        }
        (
            t.elapsed().as_secs_f64() * 1e3 / m as f64,
            bytes as f64 / m as f64,
        )
    };
    let (encode_ms, jpeg_bytes) =
        time_encoder(&|f, jpg| encode_jpeg_into(f, quality, jpg).expect("encode"));
    let (encode_ms_jpeg_encoder, jpeg_bytes_jpeg_encoder) =
        time_encoder(&|f, jpg| encode_jpeg_crate_into(f, quality, jpg).expect("encode"));
    let (encode_ms_image_crate, jpeg_bytes_image_crate) = time_encoder(&|f, jpg| {
        jpg.clear();
        let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut *jpg, quality);
        image::ImageEncoder::write_image(
            enc,
            &f.data,
            WIDTH as u32,
            HEIGHT as u32,
            image::ExtendedColorType::Rgb8,
        )
        .expect("encode");
    });
    let encoder = format!(
        "diat-synth jpeg ({})",
        if crate::jpeg::uses_avx2() {
            "AVX2"
        } else {
            "portable"
        }
    );

    BenchReport {
        cpu: diat_common::machine::cpu_model(),
        threads: rayon::current_num_threads(),
        jpeg_quality: quality,
        render_1t,
        render_encode_1t,
        render_all,
        render_encode_all,
        encoder,
        encode_ms,
        encode_ms_jpeg_encoder,
        encode_ms_image_crate,
        jpeg_bytes,
        jpeg_bytes_jpeg_encoder,
        jpeg_bytes_image_crate,
    }
}

impl std::fmt::Display for BenchReport {
    /// The table `diat bench synth` prints.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = self;
        writeln!(
            f,
            "diat bench synth: {} faces per measurement, 178×218, JPEG q{} (4:2:0)",
            r.render_1t.faces, r.jpeg_quality
        )?;
        writeln!(f, "cpu: {} ({} rayon threads)", r.cpu, r.threads)?;
        let all = format!("{} threads", r.threads);
        writeln!(
            f,
            "{:<22} {:>10} {:>10} {:>14}",
            "faces/s", "1 thread", all, "per CPU-second"
        )?;
        let cpu = |x: &Rate| {
            x.faces_per_cpu_s
                .map(|v| format!("{v:.0}"))
                .unwrap_or_else(|| "-".into())
        };
        for (name, one, many) in [
            ("render (RGB8)", &r.render_1t, &r.render_all),
            (
                "render + JPEG encode",
                &r.render_encode_1t,
                &r.render_encode_all,
            ),
        ] {
            writeln!(
                f,
                "{:<22} {:>10.0} {:>10.0} {:>14}",
                name,
                one.faces_per_s,
                many.faces_per_s,
                cpu(one)
            )?;
        }
        writeln!(
            f,
            "JPEG encode only (ms/face, mean bytes): {:.3} ms, {:.0} B with {} (used); \
         {:.3} ms, {:.0} B with jpeg-encoder; {:.3} ms, {:.0} B with the image crate",
            r.encode_ms,
            r.jpeg_bytes,
            r.encoder,
            r.encode_ms_jpeg_encoder,
            r.jpeg_bytes_jpeg_encoder,
            r.encode_ms_image_crate,
            r.jpeg_bytes_image_crate
        )?;
        writeln!(
            f,
            "(per CPU-second: the 1-thread run divided by the CPU time it got, i.e. one core's rate \
         when other processes compete for the cores)"
        )?;
        Ok(())
    }
}
