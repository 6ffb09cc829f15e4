//! CelebA's aligned frame: the 178×218 image, the mean 5-point landmark template the photos are
//! fitted to, and the paper's 128×128 central crop (§5.1: "we sample the central part of each
//! image and resize it to 128×128").

use serde::{Deserialize, Serialize};

/// Width of CelebA's aligned images (`img_align_celeba`).
pub const ALIGNED_WIDTH: u32 = 178;
/// Height of CelebA's aligned images.
pub const ALIGNED_HEIGHT: u32 = 218;

/// The mean of CelebA's aligned landmarks (`Anno/list_landmarks_align_celeba.txt`), in the file's
/// coordinates: left eye, right eye, nose, left mouth corner, right mouth corner.
///
/// Computed from the 32 rows available here (images 000001–000032 of `shared/celeba`; the full
/// file has 202,599): lefteye (69.25, 111.5), righteye (107.906, 111.063), nose (89.031, 134.75),
/// leftmouth (71.063, 151.875), rightmouth (105.281, 152.031). The commonly cited mean over the
/// whole dataset is about (69, 111), (107, 111), (88, 134), (72, 152), (105, 152) — within 1 px.
pub const CELEBA_TEMPLATE: [[f64; 2]; 5] = [
    [69.25, 111.5],
    [107.906_25, 111.062_5],
    [89.031_25, 134.75],
    [71.062_5, 151.875],
    [105.281_25, 152.031_25],
];

/// The crop window in the aligned image and the output size: the same fields and default as
/// `diat_celeba::crop::CropSpec` (the training crop), so that a photo gets exactly the crop the
/// models were trained on. Default: rows 20..198 at full width (178×178) resized to 128×128.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CropWindow {
    pub left: u32,
    pub top: u32,
    pub width: u32,
    pub height: u32,
    /// Output side in pixels (square).
    pub size: u32,
}

impl Default for CropWindow {
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

impl CropWindow {
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

    /// Aligned-image point (pixel-centre coordinates) → crop point (the same mapping as
    /// `CropSpec::map_point`).
    pub fn to_crop(&self, p: [f64; 2]) -> [f64; 2] {
        let sx = self.size as f64 / self.width as f64;
        let sy = self.size as f64 / self.height as f64;
        [
            (p[0] - self.left as f64 + 0.5) * sx - 0.5,
            (p[1] - self.top as f64 + 0.5) * sy - 0.5,
        ]
    }

    /// Crop point → aligned-image point.
    pub fn to_aligned(&self, c: [f64; 2]) -> [f64; 2] {
        let sx = self.width as f64 / self.size as f64;
        let sy = self.height as f64 / self.size as f64;
        [
            (c[0] + 0.5) * sx - 0.5 + self.left as f64,
            (c[1] + 0.5) * sy - 0.5 + self.top as f64,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_is_inside_the_default_crop_and_mappings_invert() {
        let w = CropWindow::default();
        assert!(w.validate().is_ok());
        for p in CELEBA_TEMPLATE {
            let c = w.to_crop(p);
            assert!(c.iter().all(|v| (20.0..108.0).contains(v)), "{c:?}");
            let back = w.to_aligned(c);
            assert!((back[0] - p[0]).abs() < 1e-9 && (back[1] - p[1]).abs() < 1e-9);
        }
        // Pixel-centre convention: the window's first and last pixel centres map to the crop's.
        let c = w.to_crop([177.5, 197.5]);
        assert!((c[0] - 127.5).abs() < 1e-9 && (c[1] - 127.5).abs() < 1e-9);
        assert!(CropWindow { top: 50, ..w }.validate().is_err());
    }
}
