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
        Self {
            w,
            h,
            data: rgb.iter().copied().cycle().take(w * h * 3).collect(),
        }
    }

    /// Pixel as 0..1 floats.
    pub fn get(&self, x: usize, y: usize) -> [f32; 3] {
        let i = (y * self.w + x) * 3;
        [
            self.data[i] as f32 / 255.0,
            self.data[i + 1] as f32 / 255.0,
            self.data[i + 2] as f32 / 255.0,
        ]
    }

    /// Bilinear sample at continuous pixel coordinates (clamped to the border).
    pub fn sample(&self, x: f32, y: f32) -> [f32; 3] {
        let xm = (self.w - 1) as f32;
        let ym = (self.h - 1) as f32;
        let (x, y) = (x.clamp(0.0, xm), y.clamp(0.0, ym));
        let (x0, y0) = (x.floor() as usize, y.floor() as usize);
        let (x1, y1) = ((x0 + 1).min(self.w - 1), (y0 + 1).min(self.h - 1));
        let (fx, fy) = (x - x0 as f32, y - y0 as f32);
        let (a, b, c, d) = (
            self.get(x0, y0),
            self.get(x1, y0),
            self.get(x0, y1),
            self.get(x1, y1),
        );
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

    /// Crops the square `(x0, y0, size)` and resizes it to `out × out` with a triangle ("bilinear
    /// convolution") filter whose support scales with the reduction, like the ingestion's crop
    /// (`diat_celeba::crop`, the 128×128 training frame).
    pub fn crop_resize(&self, x0: usize, y0: usize, size: usize, out: usize) -> Img {
        let horiz = triangle_weights(x0, size, out, self.w);
        let vert = triangle_weights(y0, size, out, self.h);
        // Horizontal pass over the rows the vertical pass needs.
        let (ylo, yhi) = vert.iter().fold((usize::MAX, 0), |(lo, hi), (s, w)| {
            (lo.min(*s), hi.max(s + w.len()))
        });
        let mut tmp = vec![0f32; (yhi - ylo) * out * 3];
        for y in ylo..yhi {
            let row = &self.data[y * self.w * 3..(y + 1) * self.w * 3];
            for (ox, (start, ws)) in horiz.iter().enumerate() {
                let mut acc = [0f32; 3];
                for (k, w) in ws.iter().enumerate() {
                    let i = (start + k) * 3;
                    for (a, v) in acc.iter_mut().zip(&row[i..i + 3]) {
                        *a += *v as f32 * w;
                    }
                }
                tmp[((y - ylo) * out + ox) * 3..][..3].copy_from_slice(&acc);
            }
        }
        let mut data = Vec::with_capacity(out * out * 3);
        for (start, ws) in &vert {
            for ox in 0..out {
                let mut acc = [0f32; 3];
                for (k, w) in ws.iter().enumerate() {
                    let i = ((start + k - ylo) * out + ox) * 3;
                    for (a, v) in acc.iter_mut().zip(&tmp[i..i + 3]) {
                        *a += v * w;
                    }
                }
                data.extend(acc.iter().map(|a| (a + 0.5).clamp(0.0, 255.0) as u8));
            }
        }
        Img {
            w: out,
            h: out,
            data,
        }
    }
}

/// For each output pixel: the first source index and normalised triangle weights (support
/// `max(scale, 1)` source pixels either side of the output pixel's centre).
fn triangle_weights(
    origin: usize,
    size: usize,
    out: usize,
    limit: usize,
) -> Vec<(usize, Vec<f32>)> {
    let scale = size as f32 / out as f32;
    let support = scale.max(1.0);
    (0..out)
        .map(|o| {
            let centre = origin as f32 + (o as f32 + 0.5) * scale;
            let lo = ((centre - support).floor().max(origin as f32) as usize).min(limit - 1);
            let hi = ((centre + support).ceil() as usize)
                .min(origin + size)
                .min(limit);
            let mut ws: Vec<f32> = (lo..hi.max(lo + 1))
                .map(|i| (1.0 - ((i as f32 + 0.5) - centre).abs() / support).max(0.0))
                .collect();
            let sum: f32 = ws.iter().sum();
            if sum > 0.0 {
                ws.iter_mut().for_each(|w| *w /= sum);
            } else {
                let n = ws.len() as f32;
                ws.iter_mut().for_each(|w| *w = 1.0 / n);
            }
            (lo, ws)
        })
        .collect()
}

/// Encodes RGB as a baseline JPEG with 4:2:0 chroma subsampling, like CelebA's files.
pub fn encode_jpeg(img: &Img, quality: u8) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(16 * 1024);
    encode_jpeg_into(img, quality, &mut out)?;
    Ok(out)
}

/// [`encode_jpeg`] into a reused buffer (cleared first), with this crate's encoder ([`crate::jpeg`]).
pub fn encode_jpeg_into(img: &Img, quality: u8, out: &mut Vec<u8>) -> Result<()> {
    crate::jpeg::encode_rgb(&img.data, img.w, img.h, quality.clamp(1, 100), out)
}

/// The same JPEG (baseline, 4:2:0, Annex K tables) with the `jpeg-encoder` crate, for comparison
/// (see [`crate::bench`]).
pub fn encode_jpeg_crate_into(img: &Img, quality: u8, out: &mut Vec<u8>) -> Result<()> {
    out.clear();
    if img.w > u16::MAX as usize || img.h > u16::MAX as usize {
        return Err(Error::Jpeg("image too large".into()));
    }
    let mut enc = jpeg_encoder::Encoder::new(&mut *out, quality.clamp(1, 100));
    enc.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
    enc.encode(
        &img.data,
        img.w as u16,
        img.h as u16,
        jpeg_encoder::ColorType::Rgb,
    )
    .map_err(|e| Error::Jpeg(e.to_string()))
}

/// Decodes a JPEG or PNG (any colour type) to RGB.
pub fn decode(bytes: &[u8], what: &Path) -> Result<Img> {
    let img = image::load_from_memory(bytes)
        .map_err(|e| Error::Image {
            path: what.to_path_buf(),
            msg: e.to_string(),
        })?
        .to_rgb8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    Ok(Img {
        w,
        h,
        data: img.into_raw(),
    })
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
        .write_image(
            &img.data,
            img.w as u32,
            img.h as u32,
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| Error::Image {
            path: "<png>".into(),
            msg: e.to_string(),
        })?;
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
        let err: f64 = img
            .data
            .iter()
            .zip(&back.data)
            .map(|(a, b)| (*a as f64 - *b as f64).abs())
            .sum::<f64>()
            / img.data.len() as f64;
        assert!(err < 2.0, "{err}");
        let small = img.crop_resize(0, 20, 178, 128);
        assert_eq!((small.w, small.h), (128, 128));
        // A linear ramp stays a ramp: output pixel x samples source x ≈ (x + 0.5) · 178/128 - 0.5.
        for x in [10usize, 64, 117] {
            let src = (x as f32 + 0.5) * 178.0 / 128.0 - 0.5;
            let expect = src * 255.0 / 178.0;
            let got = small.data[(60 * 128 + x) * 3] as f32;
            assert!((got - expect).abs() < 1.5, "x={x}: {got} vs {expect}");
        }
        let flat = Img::filled(178, 218, [10, 200, 77]).crop_resize(0, 20, 178, 128);
        assert!(flat.data.chunks(3).all(|p| p == [10, 200, 77]));
        assert!(decode(b"not an image", Path::new("bad.png")).is_err());
    }
}
