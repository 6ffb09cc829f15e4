//! MTCNN face detection with 5 facial landmarks (Zhang et al., *Joint Face Detection and Alignment
//! using Multi-task Cascaded Convolutional Networks*, 2016), for paper §5.4: "Each test image is
//! first aligned with the 5 facial landmarks, and then input to the DIAT models."
//!
//! A port of facenet-pytorch 2.6.0 (`models/mtcnn.py`, `models/utils/detect_face.py`), with its
//! published weights: `scripts/setup-mtcnn.sh` (run by `make setup`) downloads the wheel from PyPI,
//! checks its sha256, converts `pnet.pt`/`rnet.pt`/`onet.pt` into diat checkpoints
//! (`scripts/mtcnn/convert.py`, architectures `mtcnn_pnet`, `mtcnn_rnet`, `mtcnn_onet`) and checks
//! theirs. Nothing is downloaded at run time: [`Mtcnn::load`] reads `pnet.safetensors`,
//! `rnet.safetensors` and `onet.safetensors` from [`default_dir`].
//!
//! Parameter names are facenet-pytorch's (`conv1.weight`, `prelu1.weight`, `dense4.weight`, …), so
//! the checkpoints are the PyTorch state dicts unchanged.
//!
//! The pipeline follows `detect_face` step by step: an image pyramid (scales `12/min_face ·
//! factor^k` while the shorter side stays ≥ 12 px, area resampling, inputs `(x − 127.5) · 0.0078125`),
//! P-Net, per-scale NMS (IoU 0.5), global NMS (0.7), box regression, squaring (`rerec`), R-Net on
//! 24×24 crops, NMS (0.7), regression, O-Net on 48×48 crops, landmarks, regression and a final
//! "Min" NMS (0.7). The transposes of the fully connected layers (`permute(0, 3, 2, 1)`) are
//! facenet-pytorch's. Box arithmetic is f32 as in the reference. Two deliberate differences:
//! crops that fall outside the image are dropped together with their box (facenet-pytorch drops
//! only the crop, misaligning the batch), and ties between equal scores in NMS may order
//! differently. `tests/mtcnn.rs` compares the output with facenet-pytorch's own code.
//!
//! Coordinates are facenet-pytorch's (pixel units, the MATLAB original's minus 1); they read about
//! one pixel larger than CelebA's landmark files for the same points ([`CELEBA_OFFSET`],
//! [`FaceDetection::celeba_landmarks`]). Landmarks: left eye, right eye, nose, left mouth corner,
//! right mouth corner ("left" = smaller x in the image, CelebA's convention).

use crate::checkpoint;
use crate::error::{NetsError, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor, nn};

/// Add to MTCNN's landmark coordinates to get CelebA's (`list_landmarks_*celeba.txt`) for the
/// same points: on CelebA's 32 sample images MTCNN reads +1.1 px larger in x and y on average
/// (every landmark between +0.6 and +1.8 px; `tests/mtcnn.rs`), a one-pixel convention shift.
/// diat's alignment works in CelebA's coordinates, so that a photo is aligned exactly as CelebA's
/// own images were.
pub const CELEBA_OFFSET: f32 = -1.0;

/// Detection settings. `Default` is facenet-pytorch's `MTCNN()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MtcnnConfig {
    /// Smallest face side searched for, in pixels.
    pub min_face: f64,
    /// Score thresholds of P-Net, R-Net and O-Net.
    pub thresholds: [f64; 3],
    /// Scale step of the image pyramid.
    pub factor: f64,
}

impl Default for MtcnnConfig {
    fn default() -> Self {
        Self {
            min_face: 20.0,
            thresholds: [0.6, 0.7, 0.7],
            factor: 0.709,
        }
    }
}

/// One detected face.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaceDetection {
    /// `[x1, y1, x2, y2]` after O-Net's box regression.
    pub bbox: [f32; 4],
    /// O-Net's face probability.
    pub score: f32,
    /// Left eye, right eye, nose, left and right mouth corners, `[x, y]` each.
    pub landmarks: [[f32; 2]; 5],
}

impl FaceDetection {
    /// The landmarks in CelebA's coordinates ([`CELEBA_OFFSET`] applied).
    pub fn celeba_landmarks(&self) -> [[f32; 2]; 5] {
        self.landmarks.map(|p| p.map(|c| c + CELEBA_OFFSET))
    }

    /// Area of the box.
    pub fn area(&self) -> f32 {
        (self.bbox[2] - self.bbox[0]).max(0.0) * (self.bbox[3] - self.bbox[1]).max(0.0)
    }
}

fn prelu(p: &nn::Path<'_>, n: i64) -> Tensor {
    p.var("weight", &[n], nn::Init::Const(0.25))
}

fn conv(p: &nn::Path<'_>, i: i64, o: i64, k: i64) -> nn::Conv2D {
    nn::conv2d(p, i, o, k, Default::default())
}

/// `conv{i}` (k×k, stride 1) → `prelu{i}` → optionally a max-pool of the given kernel, stride 2,
/// ceil mode: one stage of the three networks' trunks, under facenet-pytorch's names.
#[derive(Debug)]
struct ConvStage {
    conv: nn::Conv2D,
    prelu: Tensor,
    pool: Option<i64>,
}

fn conv_stage(
    p: &nn::Path<'_>,
    i: usize,
    (cin, cout, k): (i64, i64, i64),
    pool: Option<i64>,
) -> ConvStage {
    ConvStage {
        conv: conv(&(p / format!("conv{i}")), cin, cout, k),
        prelu: prelu(&(p / format!("prelu{i}")), cout),
        pool,
    }
}

/// The stages in turn.
fn trunk(stages: &[ConvStage], x: &Tensor) -> Tensor {
    use nn::Module;
    stages.iter().fold(x.shallow_clone(), |x, s| {
        let x = s.conv.forward(&x).prelu(&s.prelu);
        match s.pool {
            Some(k) => x.max_pool2d([k, k], [2, 2], [0, 0], [1, 1], true),
            None => x,
        }
    })
}

/// `dense{i}` → `prelu{i}` on the trunk's output flattened in Caffe's (W, H, C) order, which the
/// published weights expect.
#[derive(Debug)]
struct DenseStage {
    dense: nn::Linear,
    prelu: Tensor,
}

fn dense_stage(p: &nn::Path<'_>, i: usize, cin: i64, cout: i64) -> DenseStage {
    DenseStage {
        dense: nn::linear(p / format!("dense{i}"), cin, cout, Default::default()),
        prelu: prelu(&(p / format!("prelu{i}")), cout),
    }
}

impl DenseStage {
    fn forward(&self, x: &Tensor) -> Tensor {
        use nn::Module;
        let n = x.size()[0];
        let x = x.permute([0, 3, 2, 1]).contiguous().view([n, -1]);
        self.dense.forward(&x).prelu(&self.prelu)
    }
}

fn head(p: &nn::Path<'_>, name: &str, cin: i64, cout: i64) -> nn::Linear {
    nn::linear(p / name, cin, cout, Default::default())
}

/// P-Net: the fully convolutional proposal network (12×12 receptive field, stride 2).
#[derive(Debug)]
pub struct PNet {
    trunk: Vec<ConvStage>,
    conv4_1: nn::Conv2D,
    conv4_2: nn::Conv2D,
}

/// Builds P-Net under `p` (facenet-pytorch's names).
pub fn pnet(p: &nn::Path<'_>) -> PNet {
    PNet {
        trunk: vec![
            conv_stage(p, 1, (3, 10, 3), Some(2)),
            conv_stage(p, 2, (10, 16, 3), None),
            conv_stage(p, 3, (16, 32, 3), None),
        ],
        conv4_1: conv(&(p / "conv4_1"), 32, 2, 1),
        conv4_2: conv(&(p / "conv4_2"), 32, 4, 1),
    }
}

impl PNet {
    /// `x`: `[N, 3, H, W]`, normalised. Returns (box regression `[N, 4, H', W']`, face
    /// probabilities `[N, 2, H', W']`).
    pub fn forward(&self, x: &Tensor) -> (Tensor, Tensor) {
        use nn::Module;
        let x = trunk(&self.trunk, x);
        let a = self.conv4_1.forward(&x).softmax(1, Kind::Float);
        let b = self.conv4_2.forward(&x);
        (b, a)
    }
}

/// R-Net: the refinement network on 24×24 crops.
#[derive(Debug)]
pub struct RNet {
    trunk: Vec<ConvStage>,
    dense4: DenseStage,
    dense5_1: nn::Linear,
    dense5_2: nn::Linear,
}

/// Builds R-Net under `p` (facenet-pytorch's names).
pub fn rnet(p: &nn::Path<'_>) -> RNet {
    RNet {
        trunk: vec![
            conv_stage(p, 1, (3, 28, 3), Some(3)),
            conv_stage(p, 2, (28, 48, 3), Some(3)),
            conv_stage(p, 3, (48, 64, 2), None),
        ],
        dense4: dense_stage(p, 4, 576, 128),
        dense5_1: head(p, "dense5_1", 128, 2),
        dense5_2: head(p, "dense5_2", 128, 4),
    }
}

impl RNet {
    /// `x`: `[N, 3, 24, 24]`, normalised. Returns (box regression `[N, 4]`, probabilities `[N, 2]`).
    pub fn forward(&self, x: &Tensor) -> (Tensor, Tensor) {
        use nn::Module;
        let x = self.dense4.forward(&trunk(&self.trunk, x));
        let a = self.dense5_1.forward(&x).softmax(1, Kind::Float);
        let b = self.dense5_2.forward(&x);
        (b, a)
    }
}

/// O-Net: the output network on 48×48 crops, with the 5 landmarks.
#[derive(Debug)]
pub struct ONet {
    trunk: Vec<ConvStage>,
    dense5: DenseStage,
    dense6_1: nn::Linear,
    dense6_2: nn::Linear,
    dense6_3: nn::Linear,
}

/// Builds O-Net under `p` (facenet-pytorch's names).
pub fn onet(p: &nn::Path<'_>) -> ONet {
    ONet {
        trunk: vec![
            conv_stage(p, 1, (3, 32, 3), Some(3)),
            conv_stage(p, 2, (32, 64, 3), Some(3)),
            conv_stage(p, 3, (64, 64, 3), Some(2)),
            conv_stage(p, 4, (64, 128, 2), None),
        ],
        dense5: dense_stage(p, 5, 1152, 256),
        dense6_1: head(p, "dense6_1", 256, 2),
        dense6_2: head(p, "dense6_2", 256, 4),
        dense6_3: head(p, "dense6_3", 256, 10),
    }
}

impl ONet {
    /// `x`: `[N, 3, 48, 48]`, normalised. Returns (box regression `[N, 4]`, landmarks `[N, 10]`
    /// (five x then five y, relative to the box), probabilities `[N, 2]`).
    pub fn forward(&self, x: &Tensor) -> (Tensor, Tensor, Tensor) {
        use nn::Module;
        let x = self.dense5.forward(&trunk(&self.trunk, x));
        let a = self.dense6_1.forward(&x).softmax(1, Kind::Float);
        let b = self.dense6_2.forward(&x);
        let c = self.dense6_3.forward(&x);
        (b, c, a)
    }
}

/// Where the converted weights live: `$DIAT_MTCNN_DIR`, else `<diat cache>/mtcnn` (see
/// `diat_common::dirs`: `$DIAT_CACHE_DIR`, else `$DIAT_HOME/cache`).
pub fn default_dir() -> PathBuf {
    std::env::var_os("DIAT_MTCNN_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| diat_common::dirs::Dirs::from_env().cache.join("mtcnn"))
}

/// The three networks with their weights, and the detection settings.
#[derive(Debug)]
pub struct Mtcnn {
    pnet: PNet,
    rnet: RNet,
    onet: ONet,
    _stores: [nn::VarStore; 3],
    device: Device,
    pub config: MtcnnConfig,
}

fn load_net<N>(
    dir: &Path,
    name: &str,
    device: Device,
    build: impl FnOnce(&nn::Path<'_>) -> N,
) -> Result<(N, nn::VarStore)> {
    let path = dir.join(format!("{name}.safetensors"));
    if !path.is_file() {
        return Err(NetsError::Import {
            path,
            problem: "MTCNN weights not found: run `make setup` (scripts/setup-mtcnn.sh converts \
                      facenet-pytorch 2.6.0's published weights) or point DIAT_MTCNN_DIR at a folder \
                      with pnet/rnet/onet.safetensors"
                .into(),
        });
    }
    let mut vs = nn::VarStore::new(device);
    let net = build(&vs.root());
    checkpoint::load(&vs, &path, Some(&format!("mtcnn_{name}")))?;
    vs.freeze();
    Ok((net, vs))
}

impl Mtcnn {
    /// Loads `pnet`, `rnet` and `onet.safetensors` from `dir` onto `device`.
    pub fn load(dir: &Path, device: Device, config: MtcnnConfig) -> Result<Self> {
        let (pnet, p) = load_net(dir, "pnet", device, pnet)?;
        let (rnet, r) = load_net(dir, "rnet", device, rnet)?;
        let (onet, o) = load_net(dir, "onet", device, onet)?;
        tracing::debug!("MTCNN weights loaded from {}", dir.display());
        Ok(Self {
            pnet,
            rnet,
            onet,
            _stores: [p, r, o],
            device,
            config,
        })
    }

    /// Loads from [`default_dir`].
    pub fn load_default(device: Device, config: MtcnnConfig) -> Result<Self> {
        Self::load(&default_dir(), device, config)
    }

    pub fn pnet(&self) -> &PNet {
        &self.pnet
    }
    pub fn rnet(&self) -> &RNet {
        &self.rnet
    }
    pub fn onet(&self) -> &ONet {
        &self.onet
    }

    /// Detects faces in an RGB image (`width × height × 3` bytes, row-major). Faces come in
    /// descending score order (facenet-pytorch's `detect_face` order).
    pub fn detect(&self, rgb: &[u8], width: u32, height: u32) -> Result<Vec<FaceDetection>> {
        let (w, h) = (width as i64, height as i64);
        if rgb.len() != (w * h * 3) as usize || w == 0 || h == 0 {
            return Err(NetsError::Config(format!(
                "image of {width}x{height} pixels needs {} RGB bytes, got {}",
                w * h * 3,
                rgb.len()
            )));
        }
        let cfg = &self.config;
        if cfg.min_face <= 0.0 || !(0.0..1.0).contains(&cfg.factor) || cfg.factor == 0.0 {
            return Err(NetsError::Config(format!("MTCNN config {cfg:?}")));
        }
        tch::no_grad(|| {
            let img = Tensor::f_from_slice(rgb)?
                .view([h, w, 3])
                .permute([2, 0, 1])
                .unsqueeze(0)
                .to_device(self.device)
                .to_kind(Kind::Float);
            self.detect_tensor(&img, w, h)
        })
    }

    fn detect_tensor(&self, img: &Tensor, w: i64, h: i64) -> Result<Vec<FaceDetection>> {
        let cfg = &self.config;
        let m = 12.0 / cfg.min_face;
        let mut minl = h.min(w) as f64 * m;
        let mut scales = Vec::new();
        let mut scale = m;
        while minl >= 12.0 {
            scales.push(scale);
            scale *= cfg.factor;
            minl *= cfg.factor;
        }

        // Stage 1: P-Net on the pyramid.
        let mut cands: Vec<Cand> = Vec::new();
        for &scale in &scales {
            let size = [
                (h as f64 * scale + 1.0) as i64,
                (w as f64 * scale + 1.0) as i64,
            ];
            let im = normalise(&img.adaptive_avg_pool2d(size));
            let (reg, probs) = self.pnet.forward(&im);
            let found = generate_boxes(&reg, &probs, scale as f32, cfg.thresholds[0] as f32)?;
            let keep = nms(&found, 0.5, Overlap::Union);
            cands.extend(keep.into_iter().map(|i| found[i]));
        }
        let keep = nms(&cands, 0.7, Overlap::Union);
        let mut boxes: Vec<Cand> = keep
            .into_iter()
            .map(|i| {
                let c = cands[i];
                let (rw, rh) = (c.b[2] - c.b[0], c.b[3] - c.b[1]);
                let b = [
                    c.b[0] + c.reg[0] * rw,
                    c.b[1] + c.reg[1] * rh,
                    c.b[2] + c.reg[2] * rw,
                    c.b[3] + c.reg[3] * rh,
                ];
                Cand {
                    b: rerec(b),
                    score: c.score,
                    reg: [0.0; 4],
                }
            })
            .collect();
        tracing::trace!(
            "MTCNN: {} scales, {} P-Net boxes",
            scales.len(),
            boxes.len()
        );
        if boxes.is_empty() {
            return Ok(Vec::new());
        }

        // Stage 2: R-Net on 24×24 crops.
        let (crops, kept) = self.crops(img, &boxes, w, h, 24)?;
        boxes = kept;
        if boxes.is_empty() {
            return Ok(Vec::new());
        }
        let (reg, probs) = self.rnet.forward(&crops);
        let reg = to_rows::<4>(&reg)?;
        let probs = to_rows::<2>(&probs)?;
        let passed: Vec<Cand> = boxes
            .iter()
            .zip(reg.iter().zip(&probs))
            .filter(|(_, (_, p))| p[1] > cfg.thresholds[1] as f32)
            .map(|(c, (r, p))| Cand {
                b: c.b,
                score: p[1],
                reg: *r,
            })
            .collect();
        let keep = nms(&passed, 0.7, Overlap::Union);
        boxes = keep
            .into_iter()
            .map(|i| {
                let c = passed[i];
                Cand {
                    b: rerec(bbreg(c.b, c.reg)),
                    score: c.score,
                    reg: [0.0; 4],
                }
            })
            .collect();
        tracing::trace!("MTCNN: {} R-Net boxes", boxes.len());
        if boxes.is_empty() {
            return Ok(Vec::new());
        }

        // Stage 3: O-Net on 48×48 crops, landmarks.
        let (crops, kept) = self.crops(img, &boxes, w, h, 48)?;
        boxes = kept;
        if boxes.is_empty() {
            return Ok(Vec::new());
        }
        let (reg, lms, probs) = self.onet.forward(&crops);
        let reg = to_rows::<4>(&reg)?;
        let lms = to_rows::<10>(&lms)?;
        let probs = to_rows::<2>(&probs)?;
        let mut faces = Vec::new();
        let mut finals = Vec::new();
        for (i, c) in boxes.iter().enumerate() {
            let score = probs[i][1];
            if score <= cfg.thresholds[2] as f32 {
                continue;
            }
            let (bw, bh) = (c.b[2] - c.b[0] + 1.0, c.b[3] - c.b[1] + 1.0);
            let mut landmarks = [[0f32; 2]; 5];
            for (k, lm) in landmarks.iter_mut().enumerate() {
                *lm = [
                    bw * lms[i][k] + c.b[0] - 1.0,
                    bh * lms[i][k + 5] + c.b[1] - 1.0,
                ];
            }
            let b = bbreg(c.b, reg[i]);
            finals.push(Cand {
                b,
                score,
                reg: [0.0; 4],
            });
            faces.push(FaceDetection {
                bbox: b,
                score,
                landmarks,
            });
        }
        let keep = nms(&finals, 0.7, Overlap::Min);
        tracing::debug!("MTCNN: {} face(s)", keep.len());
        Ok(keep.into_iter().map(|i| faces[i].clone()).collect())
    }

    /// facenet-pytorch's `pad` + crop + `imresample`: boxes truncated to integers, clipped to
    /// the image (1-based), cut out and area-resampled to `size`×`size`, normalised. Returns the
    /// crops and the boxes that had a non-empty crop.
    fn crops(
        &self,
        img: &Tensor,
        boxes: &[Cand],
        w: i64,
        h: i64,
        size: i64,
    ) -> Result<(Tensor, Vec<Cand>)> {
        let mut ims = Vec::new();
        let mut kept = Vec::new();
        for c in boxes {
            let x = (c.b[0].trunc() as i64).max(1);
            let y = (c.b[1].trunc() as i64).max(1);
            let ex = (c.b[2].trunc() as i64).min(w);
            let ey = (c.b[3].trunc() as i64).min(h);
            if ey > y - 1 && ex > x - 1 {
                let crop =
                    img.f_narrow(2, y - 1, ey - (y - 1))?
                        .f_narrow(3, x - 1, ex - (x - 1))?;
                ims.push(crop.adaptive_avg_pool2d([size, size]));
                kept.push(*c);
            }
        }
        if ims.is_empty() {
            return Ok((
                Tensor::zeros([0, 3, size, size], (Kind::Float, self.device)),
                kept,
            ));
        }
        Ok((normalise(&Tensor::cat(&ims, 0)), kept))
    }
}

fn normalise(x: &Tensor) -> Tensor {
    (x - 127.5) * 0.0078125
}

/// A candidate box `[x1, y1, x2, y2]`, its score and its pending regression.
#[derive(Debug, Clone, Copy)]
struct Cand {
    b: [f32; 4],
    score: f32,
    reg: [f32; 4],
}

/// Rows of a `[N, K]` float tensor.
fn to_rows<const K: usize>(t: &Tensor) -> Result<Vec<[f32; K]>> {
    let t = t.to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
    let v: Vec<f32> = Vec::<f32>::try_from(t.view([-1]))?;
    Ok(v.chunks_exact(K)
        .map(|c| c.try_into().expect("chunk of K"))
        .collect())
}

/// facenet-pytorch's `generateBoundingBox` (stride 2, cell 12).
fn generate_boxes(reg: &Tensor, probs: &Tensor, scale: f32, thresh: f32) -> Result<Vec<Cand>> {
    let probs = probs.get(0).get(1).to_device(Device::Cpu).contiguous(); // [H', W']
    let (hh, ww) = (probs.size()[0] as usize, probs.size()[1] as usize);
    let p: Vec<f32> = Vec::<f32>::try_from(probs.view([-1]))?;
    let reg: Vec<f32> =
        Vec::<f32>::try_from(reg.get(0).to_device(Device::Cpu).contiguous().view([-1]))?;
    let plane = hh * ww;
    let mut out = Vec::new();
    for y in 0..hh {
        for x in 0..ww {
            let i = y * ww + x;
            if p[i] >= thresh {
                let (bx, by) = (x as f32, y as f32);
                out.push(Cand {
                    b: [
                        ((2.0 * bx + 1.0) / scale).floor(),
                        ((2.0 * by + 1.0) / scale).floor(),
                        ((2.0 * bx + 12.0) / scale).floor(),
                        ((2.0 * by + 12.0) / scale).floor(),
                    ],
                    score: p[i],
                    reg: [
                        reg[i],
                        reg[plane + i],
                        reg[2 * plane + i],
                        reg[3 * plane + i],
                    ],
                });
            }
        }
    }
    Ok(out)
}

/// facenet-pytorch's `bbreg` (widths with +1).
fn bbreg(b: [f32; 4], r: [f32; 4]) -> [f32; 4] {
    let w = b[2] - b[0] + 1.0;
    let h = b[3] - b[1] + 1.0;
    [
        b[0] + r[0] * w,
        b[1] + r[1] * h,
        b[2] + r[2] * w,
        b[3] + r[3] * h,
    ]
}

/// facenet-pytorch's `rerec`: the square with the box's centre and its longer side.
fn rerec(b: [f32; 4]) -> [f32; 4] {
    let h = b[3] - b[1];
    let w = b[2] - b[0];
    let l = w.max(h);
    let x1 = b[0] + w * 0.5 - l * 0.5;
    let y1 = b[1] + h * 0.5 - l * 0.5;
    [x1, y1, x1 + l, y1 + l]
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Overlap {
    /// torchvision's `nms`: IoU with areas `(x2 − x1)(y2 − y1)`, drops IoU > threshold.
    Union,
    /// facenet-pytorch's `nms_numpy(…, 'Min')`: intersection over the smaller area, with +1 sides.
    Min,
}

/// Greedy NMS; returns the kept indices in descending score order.
fn nms(c: &[Cand], threshold: f32, how: Overlap) -> Vec<usize> {
    let mut order: Vec<usize> = (0..c.len()).collect();
    order.sort_by(|&a, &b| c[b].score.total_cmp(&c[a].score));
    let plus = if how == Overlap::Min { 1.0 } else { 0.0 };
    let area = |b: &[f32; 4]| (b[2] - b[0] + plus) * (b[3] - b[1] + plus);
    let mut suppressed = vec![false; c.len()];
    let mut keep = Vec::new();
    for (oi, &i) in order.iter().enumerate() {
        if suppressed[i] {
            continue;
        }
        keep.push(i);
        let bi = &c[i].b;
        let ai = area(bi);
        for &j in &order[oi + 1..] {
            if suppressed[j] {
                continue;
            }
            let bj = &c[j].b;
            let iw = (bi[2].min(bj[2]) - bi[0].max(bj[0]) + plus).max(0.0);
            let ih = (bi[3].min(bj[3]) - bi[1].max(bj[1]) + plus).max(0.0);
            let inter = iw * ih;
            let o = match how {
                Overlap::Union => inter / (ai + area(bj) - inter),
                Overlap::Min => inter / ai.min(area(bj)),
            };
            if o > threshold {
                suppressed[j] = true;
            }
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_parameter_names() {
        let vs = nn::VarStore::new(Device::Cpu);
        let p = pnet(&(vs.root() / "p"));
        let r = rnet(&(vs.root() / "r"));
        let o = onet(&(vs.root() / "o"));
        let (reg, prob) = p.forward(&Tensor::zeros([1, 3, 30, 40], (Kind::Float, Device::Cpu)));
        assert_eq!(reg.size(), [1, 4, 10, 15]);
        assert_eq!(prob.size(), [1, 2, 10, 15]);
        let (reg, prob) = r.forward(&Tensor::zeros([5, 3, 24, 24], (Kind::Float, Device::Cpu)));
        assert_eq!((reg.size(), prob.size()), (vec![5, 4], vec![5, 2]));
        let (reg, lm, prob) = o.forward(&Tensor::zeros([2, 3, 48, 48], (Kind::Float, Device::Cpu)));
        assert_eq!(
            (reg.size(), lm.size(), prob.size()),
            (vec![2, 4], vec![2, 10], vec![2, 2])
        );
        let names = vs.variables();
        for n in [
            "p.prelu1.weight",
            "r.dense4.weight",
            "o.dense6_3.bias",
            "o.conv4.weight",
        ] {
            assert!(names.contains_key(n), "{n}");
        }
        assert_eq!(names.len(), 13 + 16 + 21);
    }

    #[test]
    fn nms_flavours() {
        let c = |b: [f32; 4], score| Cand {
            b,
            score,
            reg: [0.0; 4],
        };
        let boxes = [
            c([0.0, 0.0, 10.0, 10.0], 0.9),
            c([1.0, 1.0, 11.0, 11.0], 0.95),
            c([20.0, 20.0, 30.0, 30.0], 0.5),
            c([2.0, 2.0, 6.0, 6.0], 0.8),
        ];
        // IoU(0, 1) = 81/119 = 0.68: kept at 0.7, dropped at 0.5; box 3 is inside box 1.
        assert_eq!(nms(&boxes, 0.7, Overlap::Union), vec![1, 0, 3, 2]);
        assert_eq!(nms(&boxes, 0.5, Overlap::Union), vec![1, 3, 2]);
        assert_eq!(nms(&boxes, 0.7, Overlap::Min), vec![1, 2]);
        assert_eq!(rerec([0.0, 0.0, 10.0, 20.0]), [-5.0, 0.0, 15.0, 20.0]);
    }

    #[test]
    fn missing_weights_say_how_to_get_them() {
        let dir = tempfile::tempdir().unwrap();
        let e = Mtcnn::load(dir.path(), Device::Cpu, MtcnnConfig::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("make setup") && e.contains("pnet.safetensors"),
            "{e}"
        );
    }
}
