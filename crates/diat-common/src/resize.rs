//! The one image resizer of diat: fast_image_resize's SIMD convolution with a bilinear filter, on
//! 8-bit RGB buffers. CelebA ingestion's training crops (`diat_celeba::crop::Cropper`) and the
//! crops of aligned real photos (`diat_align`) both go through [`RgbResizer::resize_region`], so a
//! real face is brought to a model's size exactly as its training faces were.
//!
//! The function is deliberately not generic: fast_image_resize's generic resizing code (every
//! pixel type, every CPU extension) is compiled once, here, instead of once in every crate that
//! resizes — it was more than half of the functions `diat-celeba` alone compiled.

use fast_image_resize::{
    FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer, images::Image, images::ImageRef,
};

/// Reusable resizer state (one per thread).
pub struct RgbResizer {
    resizer: Resizer,
}

impl std::fmt::Debug for RgbResizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RgbResizer").finish_non_exhaustive()
    }
}

impl Default for RgbResizer {
    fn default() -> Self {
        Self::new()
    }
}

impl RgbResizer {
    pub fn new() -> Self {
        Self {
            resizer: Resizer::new(),
        }
    }

    /// Resizes the region `[left, top, width, height]` (pixels, fractional allowed) of the RGB
    /// image `src` (`src_width × src_height`, HWC, 3 bytes a pixel) into `dst`
    /// (`dst_width × dst_height × 3` bytes). Errors name what does not fit.
    pub fn resize_region(
        &mut self,
        src: &[u8],
        (src_width, src_height): (u32, u32),
        region: [f64; 4],
        dst: &mut [u8],
        (dst_width, dst_height): (u32, u32),
    ) -> Result<(), String> {
        if dst_width == 0 || dst_height == 0 || src_width == 0 || src_height == 0 {
            return Err("resize of or to an empty image".into());
        }
        let src = ImageRef::new(src_width, src_height, src, PixelType::U8x3)
            .map_err(|e| format!("source image: {e}"))?;
        let mut dst = Image::from_slice_u8(dst_width, dst_height, dst, PixelType::U8x3)
            .map_err(|e| format!("destination image: {e}"))?;
        let options = ResizeOptions::new()
            .resize_alg(ResizeAlg::Convolution(FilterType::Bilinear))
            .crop(region[0], region[1], region[2], region[3]);
        self.resizer
            .resize(&src, &mut dst, &options)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_constant_image_stays_constant_and_sizes_are_checked() {
        let src = [7u8, 100, 200].repeat(20 * 10);
        let whole = [0.0, 0.0, 20.0, 10.0];
        let mut r = RgbResizer::new();
        let mut out = vec![0u8; 5 * 3 * 3];
        r.resize_region(&src, (20, 10), whole, &mut out, (5, 3))
            .unwrap();
        assert_eq!(out, [7u8, 100, 200].repeat(15));
        // The region: the right half of a left-dark, right-bright image comes out bright (the
        // filter's support reaches a little past the region's edge, as in any crop-and-resize).
        let mut img = vec![0u8; 20 * 10 * 3];
        for y in 0..10 {
            for x in 10..20 {
                img[(y * 20 + x) * 3..][..3].copy_from_slice(&[255, 255, 255]);
            }
        }
        let mut dst = vec![0u8; 4 * 4 * 3];
        r.resize_region(&img, (20, 10), [10.0, 0.0, 10.0, 10.0], &mut dst, (4, 4))
            .unwrap();
        assert!(dst.iter().all(|&v| v > 127), "{dst:?}");
        assert!(
            dst.chunks(4 * 3)
                .all(|row| row[6..].iter().all(|&v| v == 255))
        );
        assert!(
            r.resize_region(&src[..10], (20, 10), whole, &mut out, (5, 3))
                .is_err()
        );
        assert!(
            r.resize_region(&src, (20, 10), whole, &mut out, (0, 3))
                .is_err()
        );
    }
}
