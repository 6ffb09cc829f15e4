//! `diat align`: real photos into CelebA's frame (paper §5.4: "Each test image is first aligned
//! with the 5 facial landmarks, and then input to the DIAT models"), and edited crops back into
//! the photos.
//!
//! ```text
//! diat align PHOTO|DIR… --out DIR [--landmarks CSV] [--largest] [--crop|--aligned] [--json]
//! diat align --paste-back DIR/faces.json --edited DIR --out DIR [--replace] [--feather PX]
//! ```
//!
//! Faces are found by MTCNN (`diat_nets::mtcnn`, weights from `make setup`) or read from a
//! landmark file in CelebA's column order; each is fitted to CelebA's mean landmark template
//! (least-squares similarity) and written as the 178×218 aligned image (`aligned/`) and the
//! 128×128 training crop (`crop/`), with `faces.json` recording per face the photo, box, score,
//! landmarks and transform. `diat apply` edits the crops; `--paste-back` warps each edited crop
//! back into its photo with a feathered mask.
//!
//! Detection and alignment in process (`diat apply --align`) are in [`diat_eval::apply`].

use anyhow::{Context, Result, bail};
use diat_align::{
    FacesJson, LandmarkFile, Landmarks, PasteMode, PasteOptions, align_face, crop_aligned,
    load_photo, paste_into, save_image,
};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Photos without a face are reported and skipped. MTCNN's weights come from `make setup` \
                  (scripts/setup-mtcnn.sh); DIAT_MTCNN_DIR overrides their folder."
)]
pub struct Args {
    /// Photos (JPEG/PNG) or folders of photos.
    #[arg(required_unless_present = "paste_back", value_name = "INPUT")]
    inputs: Vec<PathBuf>,
    /// Output folder: aligned/, crop/ and faces.json (with --paste-back: the edited photos).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Landmarks instead of the detector: a CSV (or CelebA's whitespace layout) with columns
    /// image_id,lefteye_x,lefteye_y,righteye_x,righteye_y,nose_x,nose_y,leftmouth_x,leftmouth_y,
    /// rightmouth_x,rightmouth_y; image_id is the photo's file name; repeated ids are several faces.
    #[arg(long, value_name = "CSV", conflicts_with = "paste_back")]
    landmarks: Option<PathBuf>,
    /// Added to every coordinate of --landmarks. The file is read in CelebA's convention; CelebA's
    /// numbers are about one pixel smaller than 0-based pixel-centre coordinates of MTCNN's kind,
    /// so a detector of that kind wants -1.
    #[arg(
        long,
        default_value_t = 0.0,
        value_name = "PX",
        allow_hyphen_values = true
    )]
    landmark_offset: f64,
    /// Only the largest face of each photo.
    #[arg(long)]
    largest: bool,
    /// Write only the 128×128 crops.
    #[arg(long, conflicts_with = "aligned")]
    crop: bool,
    /// Write only the 178×218 aligned images.
    #[arg(long)]
    aligned: bool,
    /// Print faces.json to stdout too.
    #[arg(long)]
    json: bool,
    /// Smallest face side the detector looks for, in photo pixels.
    #[arg(long, default_value_t = 20.0, value_name = "PX")]
    min_face: f64,
    /// Side of the crop (the model's image size).
    #[arg(long, default_value_t = 128)]
    size: u32,
    /// Where the detector runs: auto, cpu or cuda.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Paste edited crops back: the faces.json of an earlier `diat align`.
    #[arg(long, value_name = "FACES_JSON", requires = "edited")]
    paste_back: Option<PathBuf>,
    /// With --paste-back: the folder of edited crops (or aligned images), named like crop/ (or
    /// aligned/); a .png or .jpg of the same name is accepted.
    #[arg(long, value_name = "DIR")]
    edited: Option<PathBuf>,
    /// With --paste-back: put the edited crop over the face (upsampled) instead of adding only
    /// the edit. By default the edit is taken at the edited crop's own resolution (edited −
    /// original crop brought to that size) and added to the photo, which keeps its own
    /// resolution where nothing changed.
    #[arg(long, conflicts_with = "residual")]
    replace: bool,
    /// With --paste-back: add only the edit (the default; kept for older scripts).
    #[arg(long, hide = true)]
    residual: bool,
    /// With --paste-back: width of the soft edge of the mask, in crop pixels.
    #[arg(long, default_value_t = 8.0, value_name = "PX")]
    feather: f64,
}

use diat_eval::apply::{crop_window, detect_and_align, load_detector};

fn is_image(p: &Path) -> bool {
    matches!(
        p.extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
            .as_deref(),
        Some("jpg" | "jpeg" | "png")
    )
}

/// Input photos: files as given, folders' images sorted by name.
fn collect(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(input)
                .with_context(|| format!("reading {}", input.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && is_image(p))
                .collect();
            found.sort();
            out.extend(found);
        } else if input.is_file() {
            out.push(input.clone());
        } else {
            bail!("{}: no such file or folder", input.display());
        }
    }
    Ok(out)
}

/// A file stem not used yet (photos of the same name in different folders).
fn unique_stem(path: &Path, used: &mut HashSet<String>) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "photo".into());
    let mut candidate = stem.clone();
    let mut n = 2;
    while !used.insert(candidate.clone()) {
        candidate = format!("{stem}-{n}");
        n += 1;
    }
    candidate
}

pub fn run(args: Args) -> Result<ExitCode> {
    if let Some(faces_json) = &args.paste_back {
        return run_paste_back(&args, faces_json);
    }
    let window = crop_window(args.size);
    window.validate().map_err(anyhow::Error::msg)?;
    let photos = collect(&args.inputs)?;
    if photos.is_empty() {
        bail!("no photo found (JPEG or PNG)");
    }
    let (landmarks, detector) = match &args.landmarks {
        Some(csv) => (
            Some(LandmarkFile::read(csv)?.shifted(args.landmark_offset)),
            None,
        ),
        None => (
            None,
            Some(load_detector(
                super::parse_device(&args.device)?,
                args.min_face,
            )?),
        ),
    };
    let (write_aligned, write_crop) = (!args.crop, !args.aligned);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;

    let mut doc = FacesJson {
        version: 1,
        landmarks_from: match &args.landmarks {
            Some(p) => p.display().to_string(),
            None => "mtcnn".into(),
        },
        template: diat_align::CELEBA_TEMPLATE,
        aligned_size: [diat_align::ALIGNED_WIDTH, diat_align::ALIGNED_HEIGHT],
        photos: Vec::new(),
        faces: Vec::new(),
    };
    let mut used = HashSet::new();
    let (mut failed, mut faceless) = (0usize, 0usize);
    for path in &photos {
        let shown = path.display().to_string();
        let photo = match load_photo(path) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("{e}: skipped");
                failed += 1;
                doc.photos.push(diat_align::PhotoEntry {
                    photo: shown,
                    size: None,
                    faces: 0,
                    status: e.to_string(),
                });
                continue;
            }
        };
        let size = [photo.width(), photo.height()];
        let faces = match (&detector, &landmarks) {
            (Some(det), _) => {
                detect_and_align(det, &photo, window, args.largest).map_err(anyhow::Error::from)
            }
            (None, Some(file)) => {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let mut found: Vec<Landmarks> = file.faces_of(&name);
                // Largest first: by eye-to-mouth extent.
                let extent = |l: &Landmarks| {
                    let (e, m) = (
                        [(l[0][0] + l[1][0]) / 2.0, (l[0][1] + l[1][1]) / 2.0],
                        [(l[3][0] + l[4][0]) / 2.0, (l[3][1] + l[4][1]) / 2.0],
                    );
                    (e[0] - m[0]).hypot(e[1] - m[1]) + (l[0][0] - l[1][0]).hypot(l[0][1] - l[1][1])
                };
                found.sort_by(|a, b| extent(b).total_cmp(&extent(a)));
                if args.largest {
                    found.truncate(1);
                }
                found
                    .iter()
                    .map(|lm| align_face(&photo, lm, window, None).map_err(anyhow::Error::from))
                    .collect()
            }
            (None, None) => unreachable!("a detector or a landmark file"),
        };
        let faces = match faces {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!("{shown}: {e:#}: skipped");
                failed += 1;
                doc.photos.push(diat_align::PhotoEntry {
                    photo: shown,
                    size: Some(size),
                    faces: 0,
                    status: format!("{e:#}"),
                });
                continue;
            }
        };
        if faces.is_empty() {
            tracing::warn!("{shown}: no face found, skipped");
            faceless += 1;
            doc.photos.push(diat_align::PhotoEntry {
                photo: shown,
                size: Some(size),
                faces: 0,
                status: "no face".into(),
            });
            continue;
        }
        let stem = unique_stem(path, &mut used);
        for (k, face) in faces.iter().enumerate() {
            let name = format!("{stem}_{k}.png");
            let mut rec = face.record(&shown, size, k);
            if write_aligned {
                let rel = format!("aligned/{name}");
                save_image(&args.out.join(&rel), &face.aligned)?;
                rec.aligned_file = Some(rel);
            }
            if write_crop {
                let rel = format!("crop/{name}");
                save_image(&args.out.join(&rel), &face.crop)?;
                rec.crop_file = Some(rel);
            }
            if face.coverage < 0.9 {
                tracing::warn!(
                    "{shown} face {k}: only {:.0}% of the crop lies inside the photo (the rest repeats its edge)",
                    100.0 * face.coverage
                );
            }
            doc.faces.push(rec);
        }
        tracing::info!("{shown}: {} face(s)", faces.len());
        doc.photos.push(diat_align::PhotoEntry {
            photo: shown,
            size: Some(size),
            faces: faces.len(),
            status: "ok".into(),
        });
    }
    let text = serde_json::to_string_pretty(&doc)?;
    let json_path = args.out.join("faces.json");
    diat_common::write_atomic(&json_path, text.as_bytes())
        .with_context(|| format!("writing {}", json_path.display()))?;
    if args.json {
        println!("{text}");
    }
    eprintln!(
        "diat align: {} face(s) from {} photo(s) into {} ({faceless} without a face, {failed} failed)",
        doc.faces.len(),
        photos.len(),
        args.out.display()
    );
    Ok(super::outcome(
        doc.faces.len(),
        faceless + failed,
        "photo(s) skipped",
    ))
}

/// An edited file for `rel` (e.g. `crop/x_0.png`) in `dir`: the same name, or the same stem as
/// .png/.jpg/.jpeg.
fn find_edited(dir: &Path, rel: &str) -> Option<PathBuf> {
    let name = Path::new(rel);
    let stem = name.file_stem()?.to_string_lossy().into_owned();
    let direct = dir.join(name.file_name()?);
    if direct.is_file() {
        return Some(direct);
    }
    ["png", "jpg", "jpeg"]
        .iter()
        .map(|e| dir.join(format!("{stem}.{e}")))
        .find(|p| p.is_file())
}

fn run_paste_back(args: &Args, faces_json: &Path) -> Result<ExitCode> {
    let text = std::fs::read_to_string(faces_json)
        .with_context(|| format!("reading {}", faces_json.display()))?;
    let doc: FacesJson = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a faces.json of `diat align`", faces_json.display()))?;
    let edited_dir = args
        .edited
        .as_deref()
        .context("--paste-back needs --edited DIR")?;
    let opts = PasteOptions {
        feather: args.feather,
        mode: if args.replace {
            PasteMode::Replace
        } else {
            PasteMode::Residual
        },
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut used = HashSet::new();
    let (mut written, mut missing) = (0usize, 0usize);
    let mut photos: Vec<&str> = Vec::new();
    for f in &doc.faces {
        if !photos.contains(&f.photo.as_str()) {
            photos.push(&f.photo);
        }
    }
    for photo_path in photos {
        let pristine = load_photo(Path::new(photo_path))?;
        let mut photo = pristine.clone();
        let mut pasted = 0;
        for rec in doc.faces.iter().filter(|f| f.photo == photo_path) {
            if [photo.width(), photo.height()] != rec.photo_size {
                bail!(
                    "{photo_path}: now {}x{}, faces.json says {:?}",
                    photo.width(),
                    photo.height(),
                    rec.photo_size
                );
            }
            let Some(edited_path) = [&rec.crop_file, &rec.aligned_file]
                .into_iter()
                .flatten()
                .find_map(|rel| find_edited(edited_dir, rel))
            else {
                tracing::warn!(
                    "{photo_path} face {}: no edited image in {}, left as is",
                    rec.index,
                    edited_dir.display()
                );
                missing += 1;
                continue;
            };
            let mut edited = load_photo(&edited_path)?;
            let window = rec.crop_window;
            if edited.dimensions() == (diat_align::ALIGNED_WIDTH, diat_align::ALIGNED_HEIGHT) {
                edited = crop_aligned(&edited, window)?;
            }
            let transform = rec.similarity();
            // The unedited crop, recomputed exactly as `diat align` made it (for --residual).
            let original = if opts.mode == PasteMode::Residual {
                let lm = rec.landmarks;
                let face = align_face(&pristine, &lm, window, rec.detection)?;
                Some(face.crop)
            } else {
                None
            };
            paste_into(
                &mut photo,
                &transform,
                window,
                &edited,
                original.as_ref(),
                &opts,
            )
            .with_context(|| format!("{}", edited_path.display()))?;
            pasted += 1;
        }
        if pasted > 0 {
            let src = Path::new(photo_path);
            let stem = unique_stem(src, &mut used);
            let ext = match src
                .extension()
                .and_then(|e| e.to_str())
                .map(|e| e.to_ascii_lowercase())
                .as_deref()
            {
                Some("jpg" | "jpeg") => "jpg",
                _ => "png",
            };
            let out = args.out.join(format!("{stem}.{ext}"));
            save_image(&out, &photo)?;
            tracing::info!(
                "{photo_path}: {pasted} face(s) pasted back into {}",
                out.display()
            );
            written += 1;
        }
    }
    eprintln!(
        "diat align --paste-back: {written} photo(s) written to {} ({missing} face(s) without an edited crop)",
        args.out.display()
    );
    Ok(super::outcome(
        written,
        missing,
        "face(s) without an edited crop",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use diat_align::CropWindow;
    use diat_align::image::RgbImage;
    use diat_celeba::crop::{CropSpec, Cropper};
    use tch::Device;

    fn celeba() -> PathBuf {
        std::env::var_os("DIAT_CELEBA_SAMPLES")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/celeba"))
    }

    #[test]
    fn the_crop_is_the_training_crop_byte_for_byte() {
        // diat-align repeats CelebA ingestion's window and resizer; this holds them together.
        for size in [128, 64] {
            let window = crop_window(size);
            assert_eq!(window.size, size);
            let mut cropper = Cropper::new(CropSpec::default().with_size(size));
            for name in ["000001.jpg", "000017.jpg"] {
                let img = load_photo(&celeba().join("Img/img_align_celeba").join(name)).unwrap();
                let mut want = vec![0u8; (size * size * 3) as usize];
                cropper.process_rgb(img.as_raw(), &mut want).unwrap();
                assert_eq!(
                    crop_aligned(&img, window).unwrap().into_raw(),
                    want,
                    "{name} at {size}"
                );
            }
        }
        assert_eq!(crop_window(128), CropWindow::default());
    }

    #[test]
    fn unique_stems_and_edited_lookup() {
        let mut used = HashSet::new();
        assert_eq!(unique_stem(Path::new("a/x.jpg"), &mut used), "x");
        assert_eq!(unique_stem(Path::new("b/x.png"), &mut used), "x-2");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x_0.jpg"), b"").unwrap();
        assert_eq!(
            find_edited(dir.path(), "crop/x_0.png"),
            Some(dir.path().join("x_0.jpg"))
        );
        assert_eq!(find_edited(dir.path(), "crop/x_1.png"), None);
    }

    fn original(name: &str) -> RgbImage {
        load_photo(&celeba().join("Img/img_align_celeba").join(name)).unwrap()
    }

    /// Two CelebA faces rotated and scaled into one 900×600 photo, with their official landmarks
    /// mapped into it.
    fn group_photo() -> (RgbImage, Vec<Landmarks>, Vec<RgbImage>) {
        use diat_align::Similarity;
        let file =
            LandmarkFile::read(&celeba().join("Anno/list_landmarks_align_celeba.txt")).unwrap();
        let mut photo = RgbImage::from_pixel(900, 600, diat_align::image::Rgb([90, 120, 150]));
        let mut lms = Vec::new();
        let mut crops = Vec::new();
        for (name, s) in [
            ("000010.jpg", Similarity::new(2.0, 0.25, 120.0, 20.0)),
            ("000009.jpg", Similarity::new(1.2, -0.35, 560.0, 230.0)),
        ] {
            let orig = original(name);
            let inv = s.inverse();
            for (x, y, px) in photo.enumerate_pixels_mut() {
                let p = inv.apply([x as f64, y as f64]);
                if p[0] >= 0.0 && p[1] >= 0.0 && p[0] <= 177.0 && p[1] <= 217.0 {
                    px.0 = diat_align::warp::to_u8(diat_align::warp::sample_bilinear(
                        &orig, p[0], p[1],
                    ));
                }
            }
            lms.push(file.faces_of(name)[0].map(|p| s.apply(p)));
            crops.push(
                align_face(&orig, &file.faces_of(name)[0], crop_window(128), None)
                    .unwrap()
                    .crop,
            );
        }
        (photo, lms, crops)
    }

    #[test]
    fn detect_and_align_finds_every_face_of_a_group_photo() {
        let detector = load_detector(Device::Cpu, 20.0)
            .unwrap_or_else(|e| panic!("{e:#}\nthis test needs MTCNN's weights: run `make setup`"));
        let (photo, lms, crops) = group_photo();
        let faces = detect_and_align(&detector, &photo, crop_window(128), false).unwrap();
        assert_eq!(
            faces.len(),
            2,
            "{:?}",
            faces.iter().map(|f| f.detection).collect::<Vec<_>>()
        );
        // Largest first; each matches the face placed there, and aligns it about as well as the
        // official landmarks do.
        for (k, face) in faces.iter().enumerate() {
            let iod = (lms[k][0][0] - lms[k][1][0]).hypot(lms[k][0][1] - lms[k][1][1]);
            let err = (0..5)
                .map(|i| {
                    (face.landmarks[i][0] - lms[k][i][0]).hypot(face.landmarks[i][1] - lms[k][i][1])
                })
                .fold(0.0, f64::max);
            // Where the true landmarks land in the aligned frame under the detected alignment,
            // against the template (the official landmarks' own fit is the floor).
            let lm = &lms[k];
            let rms = face
                .transform
                .rms_residual(lm, &diat_align::CELEBA_TEMPLATE);
            let floor = diat_align::fit_to_template(lm)
                .unwrap()
                .rms_residual(lm, &diat_align::CELEBA_TEMPLATE);
            let psnr = diat_align::psnr(&face.crop, &crops[k], None);
            eprintln!(
                "face {k}: worst landmark error {:.1}% IOD; true landmarks {rms:.2} px RMS from the \
                 template (best possible {floor:.2}); crop PSNR {psnr:.1} dB",
                100.0 * err / iod
            );
            assert!(err < 0.15 * iod, "face {k}: {err} px, IOD {iod}");
            assert!(rms < floor + 1.0, "face {k}: {rms} px vs {floor}");
        }
        let one = detect_and_align(&detector, &photo, crop_window(128), true).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].transform, faces[0].transform);
        let blank = RgbImage::from_pixel(320, 240, diat_align::image::Rgb([128, 128, 128]));
        assert!(
            detect_and_align(&detector, &blank, crop_window(128), false)
                .unwrap()
                .is_empty()
        );
    }

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn run_cli(argv: &[&str]) -> ExitCode {
        use clap::Parser;
        run(
            Cli::try_parse_from(std::iter::once("align").chain(argv.iter().copied()))
                .unwrap()
                .args,
        )
        .unwrap()
    }

    #[test]
    fn cli_with_a_landmark_csv_aligns_and_pastes_back() {
        let dir = tempfile::tempdir().unwrap();
        let d = |p: &str| dir.path().join(p).to_str().unwrap().to_string();
        let (photo, lms, _) = group_photo();
        save_image(Path::new(&d("group.png")), &photo).unwrap();
        save_image(Path::new(&d("blank.png")), &RgbImage::new(64, 64)).unwrap();
        let mut csv = diat_align::landmarks::header() + "\n";
        for lm in &lms {
            let v: Vec<String> = lm.iter().flatten().map(|c| format!("{c:.3}")).collect();
            csv += &format!("group.png,{}\n", v.join(","));
        }
        std::fs::write(d("lm.csv"), csv).unwrap();
        let code = run_cli(&[
            &d("group.png"),
            &d("blank.png"),
            "--out",
            &d("out"),
            "--landmarks",
            &d("lm.csv"),
        ]);
        assert_eq!(code, ExitCode::SUCCESS);
        let doc: FacesJson =
            serde_json::from_str(&std::fs::read_to_string(d("out/faces.json")).unwrap()).unwrap();
        assert_eq!(doc.faces.len(), 2);
        assert_eq!(doc.photos[1].status, "no face");
        assert_eq!(doc.faces[0].crop_file.as_deref(), Some("crop/group_0.png"));
        assert_eq!(
            load_photo(Path::new(&d("out/aligned/group_1.png")))
                .unwrap()
                .dimensions(),
            (178, 218)
        );
        assert_eq!(
            load_photo(Path::new(&d("out/crop/group_0.png")))
                .unwrap()
                .dimensions(),
            (128, 128)
        );

        // Unedited crops pasted back (residual, the default) reproduce the photo exactly (up to
        // rounding).
        let code = run_cli(&[
            "--paste-back",
            &d("out/faces.json"),
            "--edited",
            &d("out/crop"),
            "--out",
            &d("same"),
        ]);
        assert_eq!(code, ExitCode::SUCCESS);
        let same = load_photo(Path::new(&d("same/group.png"))).unwrap();
        let max = same
            .as_raw()
            .iter()
            .zip(photo.as_raw())
            .map(|(a, b)| (*a as i32 - *b as i32).abs())
            .max()
            .unwrap();
        assert!(max <= 1, "{max}");

        // --largest --crop: one crop per photo, no aligned images.
        let code = run_cli(&[
            &d("group.png"),
            "--out",
            &d("one"),
            "--landmarks",
            &d("lm.csv"),
            "--largest",
            "--crop",
        ]);
        assert_eq!(code, ExitCode::SUCCESS);
        assert!(Path::new(&d("one/crop/group_0.png")).is_file());
        assert!(
            !Path::new(&d("one/crop/group_1.png")).exists()
                && !Path::new(&d("one/aligned")).exists()
        );
    }
}
