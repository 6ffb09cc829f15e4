//! Applying a trained model to images and whole photos (`diat apply`): the inputs (files,
//! folders, zips) with output names that never collide, CelebA-aligned faces or square crops
//! edited in batches, and real photos detected (MTCNN), aligned like CelebA, edited and pasted
//! back at the photo's resolution (§5.4).
//!
//! ```no_run
//! use diat_eval::apply::{ApplyOptions, apply_photos, collect, load_detector};
//! use diat_train::model::Model;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let device = tch::Device::Cpu;
//! // A zoo name or a local run resolves to files; the model loads from its folder.
//! let resolved = diat_zoo::resolve_and_fetch("runs/mouth_open-diat-a")?;
//! let model = Model::load(resolved.model_path(), device)?;
//! let detector = load_detector(device, 20.0)?;
//! let photos = collect(&["group.jpg".into()], false)?;
//! let report = apply_photos(&model, &detector, &photos, "edited".as_ref(), &ApplyOptions::default())?;
//! println!("{} photos, {} faces edited", report.written, report.faces);
//! # Ok(())
//! # }
//! ```

use crate::error::{EvalError, Result};
use diat_align::{
    AlignedFace, CropWindow, Detection, Landmarks, PasteMode, PasteOptions, align_face,
};
use diat_celeba::crop::{CropSpec, Cropper};
use diat_celeba::dataset::{ALIGNED_HEIGHT, ALIGNED_WIDTH};
use diat_common::Progress;
use diat_nets::mtcnn::{Mtcnn, MtcnnConfig};
use diat_train::data::images_to_device;
use diat_train::model::Model;
use image::RgbImage;
use std::io::Read;
use std::path::{Path, PathBuf};
use tch::{Device, Tensor};

/// The training crop window (`diat_celeba::crop::CropSpec::default()`) at `size`.
pub fn crop_window(size: u32) -> CropWindow {
    let s = CropSpec::default().with_size(size);
    CropWindow {
        left: s.left,
        top: s.top,
        width: s.width,
        height: s.height,
        size: s.size,
    }
}

/// Loads MTCNN from `$DIAT_MTCNN_DIR` or the diat cache (`make setup` puts it there).
pub fn load_detector(device: Device, min_face: f64) -> Result<Mtcnn> {
    let config = MtcnnConfig {
        min_face,
        ..MtcnnConfig::default()
    };
    Ok(Mtcnn::load_default(device, config)?)
}

/// Detects the faces of `photo` and aligns each (largest first, facenet-pytorch's
/// `select_largest` order; only the largest with `largest`). `window`: [`crop_window`] of the
/// model's size. An empty result means no face.
pub fn detect_and_align(
    detector: &Mtcnn,
    photo: &RgbImage,
    window: CropWindow,
    largest: bool,
) -> Result<Vec<AlignedFace>> {
    let mut found = detector.detect(photo.as_raw(), photo.width(), photo.height())?;
    found.sort_by(|a, b| b.area().total_cmp(&a.area()));
    let mut faces = Vec::new();
    for d in found {
        let lm: Landmarks = d.celeba_landmarks().map(|p| p.map(f64::from));
        let det = Detection {
            bbox: d.bbox,
            score: d.score,
        };
        faces.push(align_face(photo, &lm, window, Some(det))?);
        if largest {
            break;
        }
    }
    Ok(faces)
}

/// MTCNN as the face source of [`diat_align::workflow::align_photos`] (`diat align` without
/// `--landmarks`).
pub struct MtcnnFinder<'a>(pub &'a Mtcnn);

impl diat_align::workflow::FaceFinder for MtcnnFinder<'_> {
    fn describe(&self) -> String {
        "mtcnn".into()
    }

    fn find(
        &self,
        _path: &Path,
        photo: &RgbImage,
        window: CropWindow,
        largest: bool,
    ) -> std::result::Result<Vec<AlignedFace>, Box<dyn std::error::Error + Send + Sync>> {
        Ok(detect_and_align(self.0, photo, window, largest)?)
    }
}

/// One input image: its output stem and bytes.
#[derive(Debug, Clone)]
pub struct Item {
    /// Output file stem, unique among the inputs ([`diat_common::names::output_stems`]).
    pub stem: String,
    /// Where it came from (a path, or `zip:member`), for messages.
    pub source: String,
    pub bytes: Vec<u8>,
}

/// Zip members larger than this are refused (the declared size is not trusted either).
const MAX_MEMBER: u64 = 256 << 20;

/// The input images of `inputs` (files, folders of JPEG/PNG, zips), with output stems that never
/// collide: `face.jpg` and `face.png` give `face.jpg` and `face.png`; the same file name in two
/// folders is an error. With `keep_intermediate` the `.transform`/`.input` names are reserved too.
pub fn collect(inputs: &[PathBuf], keep_intermediate: bool) -> Result<Vec<Item>> {
    let mut items = collect_items(inputs)?;
    let names: Vec<&str> = items.iter().map(|it| it.source.as_str()).collect();
    let suffixes: &[&str] = if keep_intermediate {
        &[".transform", ".input"]
    } else {
        &[]
    };
    let stems = diat_common::names::output_stems(&names, suffixes).map_err(EvalError::Config)?;
    for (it, s) in items.iter_mut().zip(stems) {
        it.stem = s;
    }
    Ok(items)
}

fn collect_items(inputs: &[PathBuf]) -> Result<Vec<Item>> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| EvalError::Io { path, source }
    };
    let mut items = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(input)
                .map_err(io(input))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file() && diat_align::is_photo_name(p))
                .collect();
            files.sort();
            for f in files {
                items.push(Item {
                    stem: String::new(),
                    source: f.display().to_string(),
                    bytes: std::fs::read(&f).map_err(io(&f))?,
                });
            }
        } else if input
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("zip"))
        {
            let bad = |problem: String| EvalError::Input {
                path: input.clone(),
                problem,
            };
            diat_common::zipdir::check_unique(input).map_err(|e| bad(e.to_string()))?;
            let f = std::fs::File::open(input).map_err(io(input))?;
            let mut z =
                zip::ZipArchive::new(f).map_err(|e| bad(format!("not a readable zip: {e}")))?;
            for i in 0..z.len() {
                let mut m = z.by_index(i).map_err(|e| bad(e.to_string()))?;
                let name = m.name().to_string();
                // Never trust member paths: only the file name is used for the output.
                if m.is_dir() || !diat_align::is_photo_name(&name) || m.enclosed_name().is_none() {
                    continue;
                }
                let mut bytes = Vec::with_capacity(m.size().min(MAX_MEMBER) as usize);
                (&mut m)
                    .take(MAX_MEMBER + 1)
                    .read_to_end(&mut bytes)
                    .map_err(io(input))?;
                if bytes.len() as u64 > MAX_MEMBER {
                    return Err(bad(format!("{name}: larger than {} MB", MAX_MEMBER >> 20)));
                }
                items.push(Item {
                    stem: String::new(),
                    source: format!("{}:{name}", input.display()),
                    bytes,
                });
            }
        } else if input.is_file() {
            items.push(Item {
                stem: String::new(),
                source: input.display().to_string(),
                bytes: std::fs::read(input).map_err(io(input))?,
            });
        } else {
            return Err(EvalError::Input {
                path: input.clone(),
                problem: "no such file or folder".into(),
            });
        }
    }
    Ok(items)
}

/// The image of `item`, decoded as strictly as `diat data` and `diat align` decode (a truncated
/// JPEG is an error); the message does not repeat the source's name.
fn decode(item: &Item) -> std::result::Result<RgbImage, String> {
    diat_align::decode_photo(Path::new(&item.source), &item.bytes).map_err(|e| {
        format!(
            "not a readable image: {}",
            crate::faces::without_source(&e.to_string(), &item.source)
        )
    })
}

/// The model's input for one image: a CelebA-aligned 178×218 face is cropped like the training
/// data; a square crop of another size (`diat align`'s 128 px crops for a 64 px model) is
/// resized with the resizer `--paste-back` uses to take the edit at the model's size.
fn prepare(item: &Item, cropper: &mut Cropper, size: u32) -> std::result::Result<Vec<u8>, String> {
    let img = decode(item)?;
    let (w, h) = img.dimensions();
    if (w, h) == (size, size) {
        return Ok(img.into_raw());
    }
    if w == h {
        return diat_align::resize(&img, size, size)
            .map(|r| r.into_raw())
            .map_err(|e| e.to_string());
    }
    if (w, h) != (ALIGNED_WIDTH, ALIGNED_HEIGHT) {
        return Err(format!(
            "{w}x{h}: expected a CelebA-aligned {ALIGNED_WIDTH}x{ALIGNED_HEIGHT} face or a square crop (align photos with `diat align`)"
        ));
    }
    let mut out = vec![0u8; (size * size * 3) as usize];
    cropper
        .process_rgb(img.as_raw(), &mut out)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// Writes `rgb` (`size`², resized to `out_size` when given) as a PNG, atomically.
fn save_png(rgb: &[u8], size: u32, out_size: Option<u32>, path: &Path) -> Result<()> {
    let mut img = RgbImage::from_raw(size, size, rgb.to_vec()).ok_or_else(|| {
        EvalError::Config(format!(
            "{}: {} bytes for {size}²",
            path.display(),
            rgb.len()
        ))
    })?;
    if let Some(o) = out_size.filter(|&o| o != size) {
        img = image::imageops::resize(&img, o, o, image::imageops::FilterType::Triangle);
    }
    diat_align::save_image(path, &img)?;
    Ok(())
}

/// Settings of [`apply_images`] and [`apply_photos`].
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Images per forward pass.
    pub batch: usize,
    /// Also write the input crop and T(x) beside each result (`<stem>.input.png`,
    /// `<stem>.transform.png`; images only).
    pub keep_intermediate: bool,
    /// Side of the written images (images only; default: the model's).
    pub out_size: Option<u32>,
    /// How an edit enters a photo (photos only): [`PasteMode::Residual`] adds only what the model
    /// changed, at the model's own resolution.
    pub paste: PasteMode,
    /// Only the largest face of each photo.
    pub largest: bool,
    pub progress: diat_common::progress::Mode,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            batch: 32,
            keep_intermediate: false,
            out_size: None,
            paste: PasteMode::Residual,
            largest: false,
            progress: diat_common::progress::Mode::auto(),
        }
    }
}

/// What [`apply_images`] or [`apply_photos`] produced.
#[derive(Debug, Clone, Default)]
pub struct ApplyReport {
    /// Images (or photos) written.
    pub written: usize,
    /// Faces edited (photos; equals `written` for images).
    pub faces: usize,
    /// Inputs skipped: (source, why).
    pub skipped: Vec<(String, String)>,
}

/// Edits CelebA-aligned faces or square crops and writes `<stem>.png` into `out`.
pub fn apply_images(
    model: &Model,
    items: &[Item],
    out: &Path,
    opts: &ApplyOptions,
) -> Result<ApplyReport> {
    let size = model.image_size as u32;
    std::fs::create_dir_all(out).map_err(|source| EvalError::Io {
        path: out.into(),
        source,
    })?;
    let mut cropper = Cropper::new(CropSpec::default().with_size(size));
    let progress = Progress::with_mode("apply", Some(items.len() as u64), opts.progress);
    let mut report = ApplyReport::default();
    let s = size as i64;
    let image_bytes = (s * s * 3) as usize;
    for chunk in items.chunks(opts.batch.max(1)) {
        let mut ok = Vec::new();
        let mut pixels = Vec::new();
        for it in chunk {
            match prepare(it, &mut cropper, size) {
                Ok(px) => {
                    pixels.extend_from_slice(&px);
                    ok.push(it);
                }
                Err(why) => report.skipped.push((it.source.clone(), why)),
            }
        }
        if !ok.is_empty() {
            let n = ok.len() as i64;
            let x = images_to_device(
                &Tensor::from_slice(&pixels).view([n, s, s, 3]),
                model.device,
            );
            let (tx, y) = model.apply(&x);
            let outs = diat_train::images::to_rgb(&y);
            let txs = opts
                .keep_intermediate
                .then(|| diat_train::images::to_rgb(&tx));
            for (k, it) in ok.iter().enumerate() {
                let at = |suffix: &str| out.join(format!("{}{suffix}.png", it.stem));
                save_png(&outs[k], size, opts.out_size, &at(""))?;
                if let Some(txs) = &txs {
                    save_png(&txs[k], size, opts.out_size, &at(".transform"))?;
                    let input = &pixels[k * image_bytes..(k + 1) * image_bytes];
                    save_png(input, size, opts.out_size, &at(".input"))?;
                }
                report.written += 1;
            }
        }
        progress.inc(chunk.len() as u64);
    }
    progress.finish();
    report.faces = report.written;
    Ok(report)
}

/// Edits every face of every photo in place (detect, align like CelebA, apply, paste back) and
/// writes the whole photo as `<stem>.png` into `out`.
pub fn apply_photos(
    model: &Model,
    detector: &Mtcnn,
    items: &[Item],
    out: &Path,
    opts: &ApplyOptions,
) -> Result<ApplyReport> {
    let size = model.image_size as u32;
    std::fs::create_dir_all(out).map_err(|source| EvalError::Io {
        path: out.into(),
        source,
    })?;
    let window = crop_window(size);
    let paste = PasteOptions {
        mode: opts.paste,
        ..Default::default()
    };
    let progress = Progress::with_mode("apply --align", Some(items.len() as u64), opts.progress);
    let mut report = ApplyReport::default();
    for it in items {
        progress.inc(1);
        let photo = match decode(it) {
            Ok(p) => p,
            Err(why) => {
                report.skipped.push((it.source.clone(), why));
                continue;
            }
        };
        let faces = detect_and_align(detector, &photo, window, opts.largest)?;
        if faces.is_empty() {
            report
                .skipped
                .push((it.source.clone(), "no face found".into()));
            continue;
        }
        let crops: Vec<&RgbImage> = faces.iter().map(|f| &f.crop).collect();
        let (_, y) = model.apply(&crate::batch::to_input(&crops, model.device));
        let mut result = photo;
        for (f, edited) in faces.iter().zip(crate::batch::to_images(&y)?) {
            // f.crop is the model's input at the model's size: the residual is taken there.
            result = diat_align::paste_back_with(&result, f, &edited, &paste)?;
            report.faces += 1;
        }
        diat_align::save_image(&out.join(format!("{}.png", it.stem)), &result)?;
        report.written += 1;
    }
    progress.finish();
    Ok(report)
}
