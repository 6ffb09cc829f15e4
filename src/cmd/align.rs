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
//! The work is `diat_align::workflow` (align, paste back) with MTCNN from [`diat_eval::apply`],
//! which also has detection and alignment in process (`diat apply --align`).

use anyhow::{Context, Result};
use diat_align::workflow::{
    AlignOptions, FaceFinder, align_photos, collect_photos, paste_back_photos,
};
use diat_align::{LandmarkFile, PasteMode, PasteOptions};
use diat_eval::apply::{MtcnnFinder, crop_window, load_detector};
use std::path::PathBuf;
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

pub fn run(args: Args) -> Result<ExitCode> {
    if let Some(faces_json) = &args.paste_back {
        let edited = args
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
        let r = paste_back_photos(faces_json, edited, &args.out, &opts)?;
        eprintln!(
            "diat align --paste-back: {} photo(s) written to {} ({} face(s) without an edited crop)",
            r.written.len(),
            args.out.display(),
            r.missing
        );
        return Ok(super::outcome(
            r.written.len(),
            r.missing,
            "face(s) without an edited crop",
        ));
    }
    let photos = collect_photos(&args.inputs)?;
    let opts = AlignOptions {
        out: args.out.clone(),
        window: crop_window(args.size),
        largest: args.largest,
        write_aligned: !args.crop,
        write_crop: !args.aligned,
    };
    let r = match &args.landmarks {
        Some(csv) => {
            let file = LandmarkFile::read(csv)?.shifted(args.landmark_offset);
            align_photos(&photos, &file as &dyn FaceFinder, &opts)?
        }
        None => {
            let device = super::parse_device(&args.device)?;
            let detector = load_detector(device, args.min_face)?;
            align_photos(&photos, &MtcnnFinder(&detector), &opts)?
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r.doc)?);
    }
    eprintln!(
        "diat align: {} face(s) from {} photo(s) into {} ({} without a face, {} failed)",
        r.doc.faces.len(),
        photos.len(),
        args.out.display(),
        r.faceless,
        r.failed
    );
    Ok(super::outcome(
        r.doc.faces.len(),
        r.skipped(),
        "photo(s) skipped",
    ))
}
