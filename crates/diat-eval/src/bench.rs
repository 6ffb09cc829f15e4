//! `diat bench real`: the two evaluation networks' inference speed — the dlib descriptor port
//! (150×150 chips) and the attribute classifier — each at several batch sizes, measured with the
//! timing loop of every diat benchmark (`diat_nets::timing::measure`). Their peers run in the same
//! command: dlib's own Python API on the same chips (`scripts/dlib/reference.py bench`) and the
//! classifier's PyTorch module in eager mode (`scripts/reference/classifier_reference.py bench`).

use crate::classifier::Classifier;
use crate::error::Result;
use diat_nets::face_descriptor::{CHIP_SIZE, FaceDescriptor};
use diat_nets::timing::measure;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// One measurement.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchRow {
    pub network: String,
    pub batch: usize,
    pub images_per_second: f64,
}

/// Descriptor forward passes on random chips, img/s per batch size.
pub fn bench_descriptor(
    d: &FaceDescriptor,
    batches: &[usize],
    min_time: f64,
) -> Result<Vec<BenchRow>> {
    let mut rows = Vec::new();
    for &b in batches {
        let chips = Tensor::randint(
            256,
            [b as i64, CHIP_SIZE, CHIP_SIZE, 3],
            (Kind::Uint8, tch::Device::Cpu),
        );
        let mut failed = None;
        let (n, secs) = measure(d.device, 2, min_time, 1, || {
            if let Err(e) = d.describe_tensor(&chips) {
                failed = Some(e);
            }
        });
        if let Some(e) = failed {
            return Err(e.into());
        }
        rows.push(BenchRow {
            network: "dlib descriptor (diat port)".into(),
            batch: b,
            images_per_second: (n * b) as f64 / secs,
        });
    }
    Ok(rows)
}

/// Classifier forward passes (inputs already at its size, in [-1, 1]), img/s per batch size.
pub fn bench_classifier(c: &Classifier, batches: &[usize], min_time: f64) -> Result<Vec<BenchRow>> {
    let s = c.config().image_size;
    let mut rows = Vec::new();
    for &b in batches {
        let x = (Tensor::rand([b as i64, 3, s, s], (Kind::Float, c.device)) * 2.0 - 1.0).detach();
        let (n, secs) = measure(c.device, 3, min_time, 1, || {
            let _ = c.net.probabilities(&x);
        });
        rows.push(BenchRow {
            network: "attribute classifier".into(),
            batch: b,
            images_per_second: (n * b) as f64 / secs,
        });
    }
    Ok(rows)
}
