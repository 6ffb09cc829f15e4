//! Cuts a dlib face chip (dlib's geometry and sampling, see `diat_align::chip`).
//!
//! ```text
//! cargo run --release -p diat-align --example chip -- IMG x0,y0,...,x4,y4 OUT.png [dlib5|celeba5] [SIZE] [PADDING]
//! ```
//!
//! `dlib5` (default): the 5 points of dlib's `shape_predictor_5_face_landmarks` (what
//! `dlib.get_face_chip` takes); `celeba5`: our landmarks in CelebA's order (eye centres, nose tip,
//! mouth corners). SIZE defaults to 150 and PADDING to 0.25 (dlib's `compute_face_descriptor`).

use diat_align::chip::{FACE_CHIP_PADDING, FACE_CHIP_SIZE, dlib_chip_from_dlib5, face_chip};
use std::path::Path;
use std::process::ExitCode;

fn run(args: &[String]) -> Result<(), String> {
    if args.len() < 3 || args.len() > 6 {
        return Err(
            "usage: chip IMG x0,y0,...,x4,y4 OUT.png [dlib5|celeba5] [SIZE] [PADDING]".into(),
        );
    }
    let img = diat_align::load_photo(Path::new(&args[0])).map_err(|e| e.to_string())?;
    let v: Vec<f64> = args[1]
        .split(',')
        .map(|t| t.trim().parse::<f64>().map_err(|e| format!("{t:?}: {e}")))
        .collect::<Result<_, _>>()?;
    if v.len() != 10 {
        return Err(format!("need 10 coordinates, got {}", v.len()));
    }
    let pts: [[f64; 2]; 5] = std::array::from_fn(|i| [v[2 * i], v[2 * i + 1]]);
    let mode = args.get(3).map(String::as_str).unwrap_or("dlib5");
    let size = match args.get(4) {
        Some(s) => s.parse::<u32>().map_err(|e| format!("SIZE {s:?}: {e}"))?,
        None => FACE_CHIP_SIZE,
    };
    let padding = match args.get(5) {
        Some(s) => s
            .parse::<f64>()
            .map_err(|e| format!("PADDING {s:?}: {e}"))?,
        None => FACE_CHIP_PADDING,
    };
    let chip = match mode {
        "dlib5" => dlib_chip_from_dlib5(&img, &pts, size, padding),
        "celeba5" => face_chip(&img, &pts, size, padding),
        other => {
            return Err(format!(
                "unknown point convention {other:?} (dlib5 or celeba5)"
            ));
        }
    }
    .map_err(|e| e.to_string())?;
    diat_align::save_image(Path::new(&args[2]), &chip).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chip: {e}");
            ExitCode::FAILURE
        }
    }
}
