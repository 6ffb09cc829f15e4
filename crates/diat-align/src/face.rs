//! One face of a photo brought into CelebA's frame: the similarity fitted to its 5 landmarks, the
//! 178×218 aligned image and the 128×128 training crop.

use crate::error::{AlignError, Result};
use crate::landmarks::Landmarks;
use crate::similarity::{Point, Similarity};
use crate::template::{ALIGNED_HEIGHT, ALIGNED_WIDTH, CELEBA_TEMPLATE, CropWindow};
use crate::warp;
use image::RgbImage;
use serde::{Deserialize, Serialize};

/// Where a face came from when a detector found it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// `[x1, y1, x2, y2]` in the photo.
    pub bbox: [f32; 4],
    pub score: f32,
}

/// A face of a photo in CelebA's aligned frame.
#[derive(Debug, Clone)]
pub struct AlignedFace {
    /// The landmarks in the photo (CelebA's coordinate convention).
    pub landmarks: Landmarks,
    pub detection: Option<Detection>,
    /// Photo → aligned 178×218 frame (least squares on the 5 points onto [`CELEBA_TEMPLATE`]).
    pub transform: Similarity,
    /// The 178×218 aligned image (CelebA's `img_align_celeba` geometry).
    pub aligned: RgbImage,
    /// The model input: `window` of `aligned` resized to `window.size`² (128×128 by default).
    pub crop: RgbImage,
    pub window: CropWindow,
    /// Fraction of the crop window that lies inside the photo (the rest repeats the photo's edge).
    pub coverage: f32,
    /// Root-mean-square distance between the mapped landmarks and the template, in aligned pixels.
    pub fit_rms: f64,
}

/// What `faces.json` records per face: enough to paste an edited crop back later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaceRecord {
    /// The photo, as given.
    pub photo: String,
    /// `[width, height]` of the photo.
    pub photo_size: [u32; 2],
    /// Index of the face in the photo (detector order: largest first).
    pub index: usize,
    pub detection: Option<Detection>,
    pub landmarks: Landmarks,
    /// Photo → aligned 178×218 frame, `[[a, −b, tx], [b, a, ty]]`.
    pub transform: [[f64; 3]; 2],
    pub scale: f64,
    pub rotation_degrees: f64,
    pub crop_window: CropWindow,
    pub coverage: f32,
    pub fit_rms: f64,
    /// Files written for this face, relative to the output folder.
    pub aligned_file: Option<String>,
    pub crop_file: Option<String>,
}

impl FaceRecord {
    /// The similarity stored in `transform`.
    pub fn similarity(&self) -> Similarity {
        let m = self.transform;
        Similarity {
            a: m[0][0],
            b: m[1][0],
            tx: m[0][2],
            ty: m[1][2],
        }
    }
}

impl AlignedFace {
    /// The record for `faces.json` (file names filled in by the caller).
    pub fn record(&self, photo: &str, photo_size: [u32; 2], index: usize) -> FaceRecord {
        FaceRecord {
            photo: photo.to_string(),
            photo_size,
            index,
            detection: self.detection,
            landmarks: self.landmarks,
            transform: self.transform.matrix(),
            scale: self.transform.scale(),
            rotation_degrees: self.transform.rotation_degrees(),
            crop_window: self.window,
            coverage: self.coverage,
            fit_rms: self.fit_rms,
            aligned_file: None,
            crop_file: None,
        }
    }
}

/// The similarity taking `landmarks` onto CelebA's template.
pub fn fit_to_template(landmarks: &Landmarks) -> Result<Similarity> {
    let src: Vec<Point> = landmarks.to_vec();
    Similarity::estimate(&src, &CELEBA_TEMPLATE)
}

/// Aligns the face with `landmarks` in `photo`: fits the similarity, warps the 178×218 aligned
/// image and cuts the training crop.
pub fn align_face(
    photo: &RgbImage,
    landmarks: &Landmarks,
    window: CropWindow,
    detection: Option<Detection>,
) -> Result<AlignedFace> {
    window.validate().map_err(AlignError::Invalid)?;
    if photo.width() == 0 || photo.height() == 0 {
        return Err(AlignError::Invalid("empty photo".into()));
    }
    let transform = fit_to_template(landmarks)?;
    let fit_rms = transform.rms_residual(landmarks, &CELEBA_TEMPLATE);
    let (aligned, _) = warp::warp(photo, &transform, ALIGNED_WIDTH, ALIGNED_HEIGHT);
    let crop = crop_aligned(&aligned, window)?;
    let coverage = coverage(photo, &transform, window);
    Ok(AlignedFace {
        landmarks: *landmarks,
        detection,
        transform,
        aligned,
        crop,
        window,
        coverage,
        fit_rms,
    })
}

/// The training crop of an aligned 178×218 image: the same resizer, filter and window as the
/// CelebA ingestion (`diat_common::resize`, as `diat_celeba::crop::Cropper`: fast_image_resize, bilinear convolution).
pub fn crop_aligned(aligned: &RgbImage, window: CropWindow) -> Result<RgbImage> {
    window.validate().map_err(AlignError::Invalid)?;
    if (aligned.width(), aligned.height()) != (ALIGNED_WIDTH, ALIGNED_HEIGHT) {
        return Err(AlignError::Invalid(format!(
            "aligned image is {}x{}, expected {ALIGNED_WIDTH}x{ALIGNED_HEIGHT}",
            aligned.width(),
            aligned.height()
        )));
    }
    resize_region(
        aligned,
        [
            window.left as f64,
            window.top as f64,
            window.width as f64,
            window.height as f64,
        ],
        window.size,
        window.size,
    )
}

/// `img` resized to `width × height` with the training crops' resizer (`diat_common::resize`,
/// bilinear convolution): model outputs are brought to a classifier's size exactly as its
/// training crops were made.
pub fn resize(img: &RgbImage, width: u32, height: u32) -> Result<RgbImage> {
    if img.dimensions() == (width, height) {
        return Ok(img.clone());
    }
    let full = [0.0, 0.0, img.width() as f64, img.height() as f64];
    resize_region(img, full, width, height)
}

/// The region `[left, top, width, height]` of `img` resized to `width × height`.
fn resize_region(img: &RgbImage, region: [f64; 4], width: u32, height: u32) -> Result<RgbImage> {
    let mut out = vec![0u8; width as usize * height as usize * 3];
    diat_common::resize::RgbResizer::new()
        .resize_region(
            img.as_raw(),
            img.dimensions(),
            region,
            &mut out,
            (width, height),
        )
        .map_err(AlignError::Invalid)?;
    RgbImage::from_raw(width, height, out)
        .ok_or_else(|| AlignError::Invalid("resize buffer size".into()))
}

/// Fraction of the crop window's pixels whose source lies inside the photo.
fn coverage(photo: &RgbImage, transform: &Similarity, window: CropWindow) -> f32 {
    let to_src = transform.inverse();
    let (w, h) = (photo.width() as f64, photo.height() as f64);
    let mut inside = 0usize;
    for v in window.top..window.top + window.height {
        for u in window.left..window.left + window.width {
            let p = to_src.apply([u as f64, v as f64]);
            if p[0] >= -0.5 && p[0] <= w - 0.5 && p[1] >= -0.5 && p[1] <= h - 0.5 {
                inside += 1;
            }
        }
    }
    inside as f32 / (window.width * window.height) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_landmarks_give_the_identity() {
        let photo = RgbImage::from_fn(178, 218, |x, y| image::Rgb([x as u8, y as u8, 50]));
        let face = align_face(&photo, &CELEBA_TEMPLATE, CropWindow::default(), None).unwrap();
        assert!((face.transform.a - 1.0).abs() < 1e-12 && face.transform.b.abs() < 1e-12);
        assert_eq!(face.aligned, photo);
        assert_eq!(face.coverage, 1.0);
        assert!(face.fit_rms < 1e-9);
        assert_eq!((face.crop.width(), face.crop.height()), (128, 128));
        let rec = face.record("p.jpg", [178, 218], 0);
        assert_eq!(rec.similarity(), face.transform);
        let json = serde_json::to_string(&rec).unwrap();
        assert_eq!(serde_json::from_str::<FaceRecord>(&json).unwrap(), rec);
    }
}

/// `faces.json`, written by `diat align` beside the aligned images: the photos, what became of
/// each, and one [`FaceRecord`] per face found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FacesJson {
    pub version: u32,
    /// "mtcnn" or the landmark file.
    pub landmarks_from: String,
    pub template: [[f64; 2]; 5],
    pub aligned_size: [u32; 2],
    pub photos: Vec<PhotoEntry>,
    pub faces: Vec<FaceRecord>,
}

/// One photo of a `faces.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhotoEntry {
    pub photo: String,
    pub size: Option<[u32; 2]>,
    pub faces: usize,
    /// "ok", "no face" or the error.
    pub status: String,
}

impl FacesJson {
    /// Reads `path` (a `faces.json`), naming the file in any error.
    pub fn read(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| AlignError::Io {
            path: path.into(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| {
            AlignError::Invalid(format!(
                "{}: not a faces.json of `diat align`: {e}",
                path.display()
            ))
        })
    }
}

impl FaceRecord {
    /// The landmarks mapped into the 178×218 aligned frame.
    pub fn aligned_landmarks(&self) -> Landmarks {
        let t = self.similarity();
        self.landmarks.map(|p| t.apply(p))
    }
}

impl AlignedFace {
    /// The landmarks mapped into the 178×218 aligned frame.
    pub fn aligned_landmarks(&self) -> Landmarks {
        self.landmarks.map(|p| self.transform.apply(p))
    }
}
