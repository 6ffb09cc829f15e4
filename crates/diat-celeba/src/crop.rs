//! Paper §5.1: "we sample the central part of each image and resize it to 128×128".
//!
//! Decoding (zune-jpeg, strict: truncated or corrupt files are errors, not grey blocks), cropping
//! and resizing (`diat_common::resize`: fast_image_resize, SIMD convolution) of one aligned 178×218 image, and the same
//! geometric transform applied to its landmarks.

use crate::dataset::{ALIGNED_HEIGHT, ALIGNED_WIDTH};
use diat_common::resize::RgbResizer;
use serde::{Deserialize, Serialize};

/// The crop window in the aligned image and the output size. Default: the central 178×178 square
/// (rows 20..198) resized to 128×128, the common reading of the paper's "central part".
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CropSpec {
    pub left: u32,
    pub top: u32,
    pub width: u32,
    pub height: u32,
    /// Output side in pixels (square).
    pub size: u32,
}

impl Default for CropSpec {
    fn default() -> Self {
        Self {
            left: 0,
            top: 20,
            width: 178,
            height: 178,
            size: 128,
        }
    }
}

impl CropSpec {
    /// A crop of the same window to another output size (CPU smoke runs).
    pub fn with_size(self, size: u32) -> Self {
        Self { size, ..self }
    }

    /// Checks the window lies inside the aligned image.
    pub fn validate(&self) -> Result<(), String> {
        if self.width == 0 || self.height == 0 || self.size == 0 {
            return Err(format!("crop {self:?}: sizes must be positive"));
        }
        if self.left + self.width > ALIGNED_WIDTH || self.top + self.height > ALIGNED_HEIGHT {
            return Err(format!(
                "crop {}x{}+{}+{} leaves the {ALIGNED_WIDTH}x{ALIGNED_HEIGHT} aligned image",
                self.width, self.height, self.left, self.top
            ));
        }
        Ok(())
    }

    /// Maps a point of the aligned image (pixel-centre coordinates) into the output image.
    pub fn map_point(&self, x: f32, y: f32) -> (f32, f32) {
        let sx = self.size as f32 / self.width as f32;
        let sy = self.size as f32 / self.height as f32;
        (
            (x - self.left as f32 + 0.5) * sx - 0.5,
            (y - self.top as f32 + 0.5) * sy - 0.5,
        )
    }

    /// Maps the 10 CelebA landmark coordinates.
    pub fn map_landmarks(&self, lm: &[i16; 10]) -> [f32; 10] {
        let mut out = [0.0; 10];
        for k in 0..5 {
            let (x, y) = self.map_point(lm[2 * k] as f32, lm[2 * k + 1] as f32);
            out[2 * k] = x;
            out[2 * k + 1] = y;
        }
        out
    }

    /// Bytes of one output image (RGB).
    pub fn image_bytes(&self) -> usize {
        (self.size * self.size * 3) as usize
    }
}

/// Why an image was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reject {
    Missing(String),
    Corrupt(String),
    WrongSize { width: u32, height: u32 },
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reject::Missing(m) => write!(f, "missing: {m}"),
            Reject::Corrupt(m) => write!(f, "corrupt image: {m}"),
            Reject::WrongSize { width, height } => {
                write!(
                    f,
                    "wrong image size {width}x{height}, expected {ALIGNED_WIDTH}x{ALIGNED_HEIGHT} (not an aligned CelebA image)"
                )
            }
        }
    }
}

/// Per-thread decoder + resizer state.
pub struct Cropper {
    spec: CropSpec,
    resizer: RgbResizer,
    rgb: Vec<u8>,
}

impl std::fmt::Debug for Cropper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cropper").field("spec", &self.spec).finish()
    }
}

impl Cropper {
    pub fn new(spec: CropSpec) -> Self {
        Self {
            spec,
            resizer: RgbResizer::new(),
            rgb: Vec::new(),
        }
    }

    pub fn spec(&self) -> CropSpec {
        self.spec
    }

    /// The last decoded image (HWC RGB).
    pub fn decoded(&self) -> &[u8] {
        &self.rgb
    }

    /// Decodes an aligned JPEG (or PNG) image into `self.rgb`; returns its size.
    pub fn decode(&mut self, bytes: &[u8]) -> Result<(u32, u32), Reject> {
        diat_common::decode::check_complete_jpeg(bytes).map_err(Reject::Corrupt)?;
        if bytes.starts_with(&[0xFF, 0xD8]) {
            use zune_core::{colorspace::ColorSpace, options::DecoderOptions};
            let opts = DecoderOptions::default()
                .set_strict_mode(true)
                .jpeg_set_out_colorspace(ColorSpace::RGB);
            let mut dec =
                zune_jpeg::JpegDecoder::new_with_options(std::io::Cursor::new(bytes), opts);
            dec.decode_headers()
                .map_err(|e| Reject::Corrupt(e.to_string()))?;
            let info = dec
                .info()
                .ok_or_else(|| Reject::Corrupt("no JPEG header".into()))?;
            let (w, h) = (info.width as u32, info.height as u32);
            if (w, h) != (ALIGNED_WIDTH, ALIGNED_HEIGHT) {
                return Err(Reject::WrongSize {
                    width: w,
                    height: h,
                });
            }
            let size = dec
                .output_buffer_size()
                .ok_or_else(|| Reject::Corrupt("bad JPEG header".into()))?;
            if size != (w * h * 3) as usize {
                return Err(Reject::Corrupt(format!("unexpected decoded size {size}")));
            }
            self.rgb.resize(size, 0);
            dec.decode_into(&mut self.rgb)
                .map_err(|e| Reject::Corrupt(e.to_string()))?;
            Ok((w, h))
        } else {
            let img = image::load_from_memory(bytes).map_err(|e| Reject::Corrupt(e.to_string()))?;
            let (w, h) = (img.width(), img.height());
            if (w, h) != (ALIGNED_WIDTH, ALIGNED_HEIGHT) {
                return Err(Reject::WrongSize {
                    width: w,
                    height: h,
                });
            }
            self.rgb = img.into_rgb8().into_raw();
            Ok((w, h))
        }
    }

    /// Decodes, crops and resizes one image into `out` (`spec.image_bytes()` bytes, HWC RGB).
    pub fn process(&mut self, bytes: &[u8], out: &mut [u8]) -> Result<(), Reject> {
        let (w, h) = self.decode(bytes)?;
        self.crop_decoded(w, h, out)
    }

    fn crop_decoded(&mut self, w: u32, h: u32, out: &mut [u8]) -> Result<(), Reject> {
        let s = &self.spec;
        let region = [s.left as f64, s.top as f64, s.width as f64, s.height as f64];
        self.resizer
            .resize_region(&self.rgb, (w, h), region, out, (s.size, s.size))
            .map_err(Reject::Corrupt)
    }

    /// Crops and resizes an already decoded aligned RGB image (benchmarks, synthetic data).
    pub fn process_rgb(&mut self, rgb: &[u8], out: &mut [u8]) -> Result<(), Reject> {
        if rgb.len() != (ALIGNED_WIDTH * ALIGNED_HEIGHT * 3) as usize {
            return Err(Reject::WrongSize {
                width: 0,
                height: 0,
            });
        }
        self.rgb.clear();
        self.rgb.extend_from_slice(rgb);
        self.crop_decoded(ALIGNED_WIDTH, ALIGNED_HEIGHT, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn landmark_mapping_matches_the_crop() {
        let s = CropSpec::default();
        // The crop's top-left pixel centre maps to the output's top-left pixel centre...
        let (x, y) = s.map_point(0.0, 20.0);
        assert!((x - (0.5 * 128.0 / 178.0 - 0.5)).abs() < 1e-6 && (y - x).abs() < 1e-6);
        // ...and the window's far edge to the output's far edge.
        let (x, y) = s.map_point(177.5, 197.5);
        assert!(
            (x - 127.5).abs() < 1e-4 && (y - 127.5).abs() < 1e-4,
            "{x} {y}"
        );
        assert!(s.validate().is_ok());
        assert!(CropSpec { top: 50, ..s }.validate().is_err());
    }

    #[test]
    fn crop_of_a_synthetic_gradient() {
        // A horizontal ramp stays a ramp: output column intensity grows left to right.
        let mut rgb = vec![0u8; 178 * 218 * 3];
        for y in 0..218 {
            for x in 0..178 {
                let v = (x * 255 / 177) as u8;
                rgb[(y * 178 + x) * 3..][..3].copy_from_slice(&[v, v, 255 - v]);
            }
        }
        let mut c = Cropper::new(CropSpec::default());
        let mut out = vec![0u8; CropSpec::default().image_bytes()];
        c.process_rgb(&rgb, &mut out).unwrap();
        let px = |x: usize, y: usize| out[(y * 128 + x) * 3];
        assert!(px(0, 64) < 5 && px(127, 64) > 250);
        assert!((px(64, 0) as i32 - px(64, 127) as i32).abs() <= 1);
    }

    #[test]
    fn truncated_and_wrong_size_images_are_rejected() {
        let mut img = image::RgbImage::new(178, 218);
        for (x, y, p) in img.enumerate_pixels_mut() {
            *p = image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x * y) % 256) as u8]);
        }
        let mut jpeg = Vec::new();
        image::DynamicImage::ImageRgb8(img)
            .write_to(
                &mut std::io::Cursor::new(&mut jpeg),
                image::ImageFormat::Jpeg,
            )
            .unwrap();
        let mut c = Cropper::new(CropSpec::default());
        let mut out = vec![0u8; CropSpec::default().image_bytes()];
        c.process(&jpeg, &mut out).unwrap();
        let cut = &jpeg[..jpeg.len() / 2];
        assert!(matches!(c.process(cut, &mut out), Err(Reject::Corrupt(_))));
        assert!(matches!(
            c.process(b"<html>", &mut out),
            Err(Reject::Corrupt(_))
        ));
        let small = image::DynamicImage::ImageRgb8(image::RgbImage::new(100, 100));
        let mut png = Vec::new();
        small
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        assert_eq!(
            c.process(&png, &mut out),
            Err(Reject::WrongSize {
                width: 100,
                height: 100
            })
        );
    }
}
