//! Small RGB images: JPEG encode (CelebA-like 4:2:0), decode (JPEG/PNG), PNG write, crop + resize
//! to the 128×128 training frame, bilinear sampling.

use crate::{Error, Result};
use std::path::Path;

/// An interleaved 8-bit RGB image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Img {
    pub w: usize,
    pub h: usize,
    pub data: Vec<u8>,
}

impl Img {
    /// An image from interleaved RGB bytes (`data.len() == w * h * 3`).
    pub fn new(w: usize, h: usize, data: Vec<u8>) -> Self {
        assert_eq!(data.len(), w * h * 3, "RGB buffer size");
        Self { w, h, data }
    }

    /// A single-colour image.
    pub fn filled(w: usize, h: usize, rgb: [u8; 3]) -> Self {
        Self { w, h, data: rgb.iter().copied().cycle().take(w * h * 3).collect() }
    }

    /// Pixel as 0..1 floats.
    pub fn get(&self, x: usize, y: usize) -> [f32; 3] {
        let i = (y * self.w + x) * 3;
        [self.data[i] as f32 / 255.0, self.data[i + 1] as f32 / 255.0, self.data[i + 2] as f32 / 255.0]
    }

    /// Bilinear sample at continuous pixel coordinates (clamped to the border).
    pub fn sample(&self, x: f32, y: f32) -> [f32; 3] {
        let xm = (self.w - 1) as f32;
        let ym = (self.h - 1) as f32;
        let (x, y) = (x.clamp(0.0, xm), y.clamp(0.0, ym));
        let (x0, y0) = (x.floor() as usize, y.floor() as usize);
        let (x1, y1) = ((x0 + 1).min(self.w - 1), (y0 + 1).min(self.h - 1));
        let (fx, fy) = (x - x0 as f32, y - y0 as f32);
        let (a, b, c, d) = (self.get(x0, y0), self.get(x1, y0), self.get(x0, y1), self.get(x1, y1));
        std::array::from_fn(|k| {
            let top = a[k] + (b[k] - a[k]) * fx;
            let bot = c[k] + (d[k] - c[k]) * fx;
            top + (bot - top) * fy
        })
    }

    /// Copies `src` with its top-left corner at `(x, y)` (clipped).
    pub fn blit(&mut self, src: &Img, x: usize, y: usize) {
        for sy in 0..src.h {
            let ty = y + sy;
            if ty >= self.h {
                break;
            }
            let n = src.w.min(self.w.saturating_sub(x));
            let d = (ty * self.w + x) * 3;
            let s = sy * src.w * 3;
            self.data[d..d + n * 3].copy_from_slice(&src.data[s..s + n * 3]);
        }
    }

    /// Crops the square `(x0, y0, size)` and resizes it to `out × out` with an area (box) filter
    /// (exact for integer and fractional ratios; used for the 128×128 training frame).
    pub fn crop_resize(&self, x0: usize, y0: usize, size: usize, out: usize) -> Img {
        let scale = size as f32 / out as f32;
        let mut data = Vec::with_capacity(out * out * 3);
        for oy in 0..out {
            let (ya, yb) = (y0 as f32 + oy as f32 * scale, y0 as f32 + (oy + 1) as f32 * scale);
            for ox in 0..out {
                let (xa, xb) = (x0 as f32 + ox as f32 * scale, x0 as f32 + (ox + 1) as f32 * scale);
                let mut acc = [0f32; 3];
                let mut wsum = 0f32;
                let mut yy = ya.floor() as usize;
                while (yy as f32) < yb && yy < self.h {
                    let wy = (yb.min(yy as f32 + 1.0) - ya.max(yy as f32)).max(0.0);
                    let mut xx = xa.floor() as usize;
                    while (xx as f32) < xb && xx < self.w {
                        let wx = (xb.min(xx as f32 + 1.0) - xa.max(xx as f32)).max(0.0);
                        let wgt = wx * wy;
                        let i = (yy * self.w + xx) * 3;
                        for (a, v) in acc.iter_mut().zip(&self.data[i..i + 3]) {
                            *a += *v as f32 * wgt;
                        }
                        wsum += wgt;
                        xx += 1;
                    }
                    yy += 1;
                }
                for a in acc {
                    data.push((a / wsum.max(1e-9) + 0.5).clamp(0.0, 255.0) as u8);
                }
            }
        }
        Img { w: out, h: out, data }
    }
}

/// Encodes RGB as a baseline JPEG with 4:2:0 chroma subsampling, like CelebA's files.
pub fn encode_jpeg(img: &Img, quality: u8) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(16 * 1024);
    encode_jpeg_into(img, quality, &mut out)?;
    Ok(out)
}

/// [`encode_jpeg`] into a reused buffer (cleared first).
pub fn encode_jpeg_into(img: &Img, quality: u8, out: &mut Vec<u8>) -> Result<()> {
    out.clear();
    if img.w > u16::MAX as usize || img.h > u16::MAX as usize {
        return Err(Error::Jpeg("image too large".into()));
    }
    let mut enc = jpeg_encoder::Encoder::new(&mut *out, quality.clamp(1, 100));
    enc.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
    enc.encode(&img.data, img.w as u16, img.h as u16, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| Error::Jpeg(e.to_string()))
}

/// Decodes a JPEG or PNG (any colour type) to RGB.
pub fn decode(bytes: &[u8], what: &Path) -> Result<Img> {
    let img = image::load_from_memory(bytes)
        .map_err(|e| Error::Image { path: what.to_path_buf(), msg: e.to_string() })?
        .to_rgb8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    Ok(Img { w, h, data: img.into_raw() })
}

/// Reads and decodes an image file.
pub fn read(path: &Path) -> Result<Img> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode(&bytes, path)
}

/// PNG bytes of an image.
pub fn encode_png(img: &Img) -> Result<Vec<u8>> {
    use image::ImageEncoder;
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(&img.data, img.w as u32, img.h as u32, image::ExtendedColorType::Rgb8)
        .map_err(|e| Error::Image { path: "<png>".into(), msg: e.to_string() })?;
    Ok(out)
}

/// Writes a PNG atomically.
pub fn write_png(path: &Path, img: &Img) -> Result<()> {
    let bytes = encode_png(img)?;
    diat_common::write_atomic(path, &bytes).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jpeg_round_trip_is_close() {
        let mut data = Vec::new();
        for y in 0..218 {
            for x in 0..178 {
                data.extend_from_slice(&[(x * 255 / 178) as u8, (y * 255 / 218) as u8, 128]);
            }
        }
        let img = Img::new(178, 218, data);
        let jpg = encode_jpeg(&img, 92).unwrap();
        let back = decode(&jpg, Path::new("x.jpg")).unwrap();
        assert_eq!((back.w, back.h), (178, 218));
        let err: f64 = img.data.iter().zip(&back.data).map(|(a, b)| (*a as f64 - *b as f64).abs()).sum::<f64>()
            / img.data.len() as f64;
        assert!(err < 2.0, "{err}");
        let small = img.crop_resize(0, 20, 178, 128);
        assert_eq!((small.w, small.h), (128, 128));
        assert!(decode(b"not an image", Path::new("bad.png")).is_err());
    }
}
