//! Contact sheets a curator judges by eye: cluster representatives and mask overlays, as PNG.

use crate::error::{Error, Result};
use image::{Rgb, RgbImage};
use std::path::Path;

/// Tiles equally sized RGB images (`w × h`, HWC bytes) into a grid with `cols` columns and a
/// 2-pixel gap.
pub fn grid(tiles: &[Vec<u8>], w: u32, h: u32, cols: u32) -> RgbImage {
    let cols = cols.max(1);
    let rows = (tiles.len() as u32).div_ceil(cols).max(1);
    let gap = 2;
    let mut out = RgbImage::from_pixel(
        cols * (w + gap) + gap,
        rows * (h + gap) + gap,
        Rgb([32, 32, 32]),
    );
    for (k, t) in tiles.iter().enumerate() {
        let (gx, gy) = (k as u32 % cols, k as u32 / cols);
        let (ox, oy) = (gap + gx * (w + gap), gap + gy * (h + gap));
        for y in 0..h {
            for x in 0..w {
                let i = ((y * w + x) * 3) as usize;
                out.put_pixel(ox + x, oy + y, Rgb([t[i], t[i + 1], t[i + 2]]));
            }
        }
    }
    out
}

/// Tints the masked pixels of an image red (for overlay previews).
pub fn overlay(rgb: &[u8], mask: &[u8]) -> Vec<u8> {
    let mut out = rgb.to_vec();
    for (p, &m) in out.chunks_exact_mut(3).zip(mask) {
        if m > 0 {
            p[0] = ((p[0] as u16 + 255) / 2) as u8;
            p[1] = (p[1] as u16 * 2 / 3) as u8;
            p[2] = (p[2] as u16 * 2 / 3) as u8;
        }
    }
    out
}

/// Draws small crosses at landmark positions.
pub fn mark_landmarks(rgb: &mut [u8], w: u32, h: u32, lm: &[f32; 10]) {
    for k in 0..5 {
        let (cx, cy) = (lm[2 * k].round() as i64, lm[2 * k + 1].round() as i64);
        for d in -2i64..=2 {
            for (x, y) in [(cx + d, cy), (cx, cy + d)] {
                if x >= 0 && y >= 0 && (x as u32) < w && (y as u32) < h {
                    let i = ((y as u32 * w + x as u32) * 3) as usize;
                    rgb[i..i + 3].copy_from_slice(&[0, 255, 0]);
                }
            }
        }
    }
}

/// Saves a PNG atomically.
pub fn save_png(img: &RgbImage, path: &Path) -> Result<()> {
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .map_err(|e| Error::invalid(path, e.to_string()))?;
    diat_common::write_atomic(path, &bytes).map_err(|e| Error::io(path, e))
}
