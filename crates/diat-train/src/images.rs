//! Sample grids (input | transformed | enhanced) and the loss-curve plot, as PNG.

use crate::error::{Result, TrainError};
use image::{Rgb, RgbImage};
use std::path::Path;
use tch::{Kind, Tensor};

/// N×3×S×S images in [-1, 1] → HWC RGB bytes per image.
pub fn to_rgb(batch: &Tensor) -> Vec<Vec<u8>> {
    let b = ((batch
        .detach()
        .to_device(tch::Device::Cpu)
        .to_kind(Kind::Float)
        .clamp(-1.0, 1.0)
        + 1.0)
        * 127.5)
        .round()
        .to_kind(Kind::Uint8)
        .permute([0, 2, 3, 1])
        .contiguous();
    let n = b.size()[0];
    (0..n)
        .map(|i| {
            let t = b.get(i).flatten(0, -1);
            Vec::<u8>::try_from(&t).unwrap_or_default()
        })
        .collect()
}

/// A grid with one row per tensor (each N×3×S×S), images side by side.
pub fn grid(rows: &[&Tensor]) -> RgbImage {
    let size = rows.first().map(|t| t.size()[2] as u32).unwrap_or(1);
    let cols = rows.iter().map(|t| t.size()[0] as u32).max().unwrap_or(1);
    let gap = 2;
    let mut img = RgbImage::from_pixel(
        cols * (size + gap) + gap,
        rows.len() as u32 * (size + gap) + gap,
        Rgb([255, 255, 255]),
    );
    for (r, t) in rows.iter().enumerate() {
        for (c, px) in to_rgb(t).iter().enumerate() {
            let (ox, oy) = (gap + c as u32 * (size + gap), gap + r as u32 * (size + gap));
            for y in 0..size {
                for x in 0..size {
                    let i = ((y * size + x) * 3) as usize;
                    img.put_pixel(ox + x, oy + y, Rgb([px[i], px[i + 1], px[i + 2]]));
                }
            }
        }
    }
    img
}

pub fn save_png(img: &RgbImage, path: &Path) -> Result<()> {
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .map_err(|e| TrainError::Config(format!("{}: {e}", path.display())))?;
    diat_common::write_atomic(path, &bytes).map_err(|e| TrainError::io(path, e))
}

const COLORS: [[u8; 3]; 6] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
];

fn line(img: &mut RgbImage, (x0, y0): (i64, i64), (x1, y1): (i64, i64), c: Rgb<u8>) {
    let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
    let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
    let (mut x, mut y, mut err) = (x0, y0, dx + dy);
    loop {
        if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
            img.put_pixel(x as u32, y as u32, c);
        }
        if x == x1 && y == y1 {
            break;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x += sx;
        }
        if e2 <= dx {
            err += dx;
            y += sy;
        }
    }
}

/// One panel per stage, one coloured polyline per loss (each scaled to its own range so all
/// are readable; the legend is in metrics.jsonl's key order: colours blue, orange, green, red,
/// purple, brown).
pub fn loss_curves(metrics: &[serde_json::Value]) -> RgbImage {
    let mut stages: Vec<String> = Vec::new();
    for m in metrics {
        if let Some(s) = m["stage"].as_str()
            && !stages.iter().any(|x| x == s)
        {
            stages.push(s.to_string());
        }
    }
    let (pw, ph, gap) = (360u32, 160u32, 8u32);
    let mut img = RgbImage::from_pixel(
        pw + 2 * gap,
        (ph + gap) * stages.len().max(1) as u32 + gap,
        Rgb([255, 255, 255]),
    );
    for (si, stage) in stages.iter().enumerate() {
        let oy = gap + si as u32 * (ph + gap);
        for x in 0..pw {
            img.put_pixel(gap + x, oy + ph - 1, Rgb([160, 160, 160]));
        }
        for y in 0..ph {
            img.put_pixel(gap, oy + y, Rgb([160, 160, 160]));
        }
        let rows: Vec<&serde_json::Value> = metrics
            .iter()
            .filter(|m| m["stage"] == stage.as_str())
            .collect();
        let keys: Vec<String> = rows
            .first()
            .and_then(|m| m.as_object())
            .map(|o| {
                o.keys()
                    .filter(|k| k.starts_with("loss_"))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let max_step = rows
            .iter()
            .filter_map(|m| m["step"].as_f64())
            .fold(1.0, f64::max);
        for (ki, k) in keys.iter().enumerate() {
            let pts: Vec<(f64, f64)> = rows
                .iter()
                .filter_map(|m| Some((m["step"].as_f64()?, m[k.as_str()].as_f64()?)))
                .filter(|p| p.1.is_finite())
                .collect();
            let (lo, hi) = pts
                .iter()
                .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
            let span = if hi > lo { hi - lo } else { 1.0 };
            let c = Rgb(COLORS[ki % COLORS.len()]);
            let map = |(s, v): (f64, f64)| {
                (
                    (gap as f64 + 1.0 + s / max_step * (pw as f64 - 2.0)) as i64,
                    (oy as f64 + (ph as f64 - 2.0) * (1.0 - (v - lo) / span)) as i64,
                )
            };
            for w in pts.windows(2) {
                line(&mut img, map(w[0]), map(w[1]), c);
            }
        }
    }
    img
}
