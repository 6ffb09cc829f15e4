//! Images in and out of the networks, written once for `diat apply`, `diat eval real` and
//! `diat eval lfw`: square RGB crops → a model's input batch, a batch → RGB images, a masked local
//! model's region as values, and dlib descriptors of faces cut from images with their landmarks.

use crate::error::{EvalError, Result};
use diat_align::Landmarks;
use diat_align::chip::{FACE_CHIP_PADDING, FACE_CHIP_SIZE, face_chip};
use diat_align::image::RgbImage;
use diat_nets::face_descriptor::FaceDescriptor;
use diat_train::model::Model;
use tch::{Device, Tensor};

/// Crops of one size → N×3×S×S in [-1, 1] on `device` (`diat_train::data::images_to_device`).
pub fn to_input(crops: &[&RgbImage], device: Device) -> Tensor {
    let (w, h) = crops[0].dimensions();
    let mut bytes = Vec::with_capacity(crops.len() * (w * h * 3) as usize);
    for c in crops {
        bytes.extend_from_slice(c.as_raw());
    }
    diat_train::data::images_to_device(
        &Tensor::from_slice(&bytes).view([crops.len() as i64, h as i64, w as i64, 3]),
        device,
    )
}

/// N×3×H×W in [-1, 1] → RGB images (`diat_train::images::to_rgb`).
pub fn to_images(t: &Tensor) -> Result<Vec<RgbImage>> {
    let (h, w) = (t.size()[2] as u32, t.size()[3] as u32);
    diat_train::images::to_rgb(t)
        .into_iter()
        .map(|px| {
            RgbImage::from_raw(w, h, px)
                .ok_or_else(|| EvalError::Config(format!("a network output is not {w}×{h} RGB")))
        })
        .collect()
}

/// The attribute region of a masked local model, S·S values in [0, 1] row by row; None for
/// other models.
pub fn region_values(model: &Model) -> Result<Option<Vec<f32>>> {
    model
        .region()
        .map(|r| Vec::<f32>::try_from(r.to_device(Device::Cpu).flatten(0, -1)))
        .transpose()
        .map_err(EvalError::from)
}

/// dlib's descriptor of each face: its 150×150 chip cut from the image with the landmarks.
pub fn describe(
    descriptor: &FaceDescriptor,
    faces: &[(&RgbImage, &Landmarks)],
) -> Result<Vec<[f32; 128]>> {
    let chips: Vec<RgbImage> = faces
        .iter()
        .map(|(img, lm)| face_chip(img, lm, FACE_CHIP_SIZE, FACE_CHIP_PADDING))
        .collect::<std::result::Result<_, _>>()?;
    let raw: Vec<&[u8]> = chips.iter().map(|c| c.as_raw().as_slice()).collect();
    Ok(descriptor.describe(&raw, 32)?)
}
