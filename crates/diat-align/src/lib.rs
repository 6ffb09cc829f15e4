//! Real photos for DIAT (Li, Zuo, Zhang: *Deep Identity-aware Transfer of Facial Attributes*),
//! paper §5.4: "Each test image is first aligned with the 5 facial landmarks, and then input to the
//! DIAT models." The models are trained on CelebA's aligned 178×218 images, central part resized
//! to 128×128 (§5.1); this crate gives a photo exactly that geometry and puts the edit back:
//!
//! | module | what |
//! |---|---|
//! | [`similarity`] | least-squares similarity on the 5 points (Umeyama, no reflection) |
//! | [`template`] | CelebA's 178×218 frame, its mean landmark template, the 128×128 crop window |
//! | [`warp`] | bilinear warping with supersampled downscaling |
//! | [`face`] | [`align_face`]: photo + landmarks → aligned image, crop, transform |
//! | [`paste`] | [`paste_back`]: edited crop → whole photo, inverse warp, feathered mask |
//! | [`landmarks`] | landmark files in CelebA's column order (for users' own detectors) |
//! | [`workflow`] | [`workflow::align_photos`] and [`workflow::paste_back_photos`]: `diat align` as library calls |
//! | [`chip`] | [`face_chip`]: dlib's 150×150 face chips (for its face-recognition ResNet), dlib's exact sampling |
//!
//! Landmarks are in CelebA's coordinate convention (that of `list_landmarks_align_celeba.txt`);
//! the MTCNN detector (`diat_nets::mtcnn`, which needs libtorch and so lives elsewhere) converts
//! into it. This crate does not depend on tch.

pub mod chip;
pub mod error;
pub mod face;
pub mod landmarks;
pub mod paste;
pub mod similarity;
pub mod template;
pub mod warp;
pub mod workflow;

pub use chip::{
    ChipDetails, DLIB_5_POINT_TEMPLATE, FACE_CHIP_PADDING, FACE_CHIP_SIZE, celeba5_template,
    dlib_chip_from_dlib5, extract_image_chip, face_chip, face_chip_details,
};
pub use error::{AlignError, Result};
pub use face::{
    AlignedFace, Detection, FaceRecord, FacesJson, PhotoEntry, align_face, crop_aligned,
    fit_to_template, resize,
};
pub use image;
pub use landmarks::{LandmarkFile, Landmarks};
pub use paste::{PasteMode, PasteOptions, paste_back, paste_back_with, paste_into};
pub use similarity::Similarity;
pub use template::{ALIGNED_HEIGHT, ALIGNED_WIDTH, CELEBA_TEMPLATE, CropWindow};

use image::RgbImage;
use std::path::Path;

/// Whether `path` names a photo diat reads (JPEG or PNG, by extension, any case).
pub fn is_photo_name(path: impl AsRef<Path>) -> bool {
    matches!(
        path.as_ref()
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
            .as_deref(),
        Some("jpg" | "jpeg" | "png")
    )
}

/// Reads a photo as RGB, applying its EXIF orientation (phone pictures are often stored sideways).
/// A JPEG cut short (no end-of-image marker) is an error, not a half-grey picture.
pub fn load_photo(path: &Path) -> Result<RgbImage> {
    let bytes = std::fs::read(path).map_err(|source| AlignError::Io {
        path: path.into(),
        source,
    })?;
    decode_photo(path, &bytes)
}

/// [`load_photo`] of bytes already read; `path` names them in errors.
pub fn decode_photo(path: &Path, bytes: &[u8]) -> Result<RgbImage> {
    use image::ImageDecoder;
    check_complete_jpeg(bytes)
        .map_err(|problem| AlignError::Invalid(format!("{}: {problem}", path.display())))?;
    let decode = |source| AlignError::Decode {
        path: path.into(),
        source,
    };
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|source| AlignError::Io {
            path: path.into(),
            source,
        })?;
    let mut decoder = reader.into_decoder().map_err(decode)?;
    let orientation = decoder.orientation().map_err(decode)?;
    let mut img = image::DynamicImage::from_decoder(decoder).map_err(decode)?;
    img.apply_orientation(orientation);
    Ok(img.into_rgb8())
}

pub use diat_common::decode::check_complete_jpeg;

/// Writes an image atomically; the format follows the extension (`.png`, `.jpg`/`.jpeg` at
/// quality 95).
pub fn save_image(path: &Path, img: &RgbImage) -> Result<()> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .unwrap_or_default();
    let mut bytes = Vec::new();
    let encoded = match ext.as_str() {
        "jpg" | "jpeg" => {
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 95).encode_image(img)
        }
        "png" => img.write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        ),
        other => {
            return Err(AlignError::Invalid(format!(
                "{}: unsupported image extension {other:?} (use .png or .jpg)",
                path.display()
            )));
        }
    };
    encoded.map_err(|source| AlignError::Encode {
        path: path.into(),
        source,
    })?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| AlignError::Io {
            path: dir.into(),
            source,
        })?;
    }
    diat_common::write_atomic(path, &bytes).map_err(|source| AlignError::Io {
        path: path.into(),
        source,
    })
}

/// Peak signal-to-noise ratio (dB) between two equally sized images, over the pixels where
/// `include(x, y)` holds (all when `None`). Infinite for identical pixels.
pub fn psnr(a: &RgbImage, b: &RgbImage, include: Option<&dyn Fn(u32, u32) -> bool>) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions(), "psnr: sizes differ");
    let (mut se, mut n) = (0f64, 0usize);
    for (x, y, p) in a.enumerate_pixels() {
        if include.is_some_and(|f| !f(x, y)) {
            continue;
        }
        let q = b.get_pixel(x, y);
        for c in 0..3 {
            se += (p.0[c] as f64 - q.0[c] as f64).powi(2);
        }
        n += 3;
    }
    if n == 0 || se == 0.0 {
        return f64::INFINITY;
    }
    10.0 * (255.0f64 * 255.0 / (se / n as f64)).log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_jpegs_are_refused() {
        let img = RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 3, y as u8 * 5, 90]));
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
            .encode_image(&img)
            .unwrap();
        let p = Path::new("x.jpg");
        assert_eq!(decode_photo(p, &jpeg).unwrap().dimensions(), (64, 48));
        let e = decode_photo(p, &jpeg[..jpeg.len() / 2])
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.jpg") && e.contains("truncated"), "{e}");
        // Padding after EOI is fine; HTML is a decode error naming the file.
        let mut padded = jpeg.clone();
        padded.extend_from_slice(&[0; 16]);
        assert!(decode_photo(p, &padded).is_ok());
        let e = decode_photo(p, b"<html>nope</html>")
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.jpg"), "{e}");
    }
}
