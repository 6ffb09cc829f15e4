//! Development helper: writes a sample sheet PNG
//! (`cargo run --release -p diat-synth --example dev_sheet -- out.png [seed] [full|half] [start]`).
use diat_synth::{FaceSpec, HEIGHT, WIDTH};
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let out = args.get(1).cloned().unwrap_or_else(|| "/tmp/sheet.png".into());
    let seed = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let mode = args.get(3).cloned().unwrap_or_else(|| "half".into());
    let start: u32 = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(0);
    let layout = diat_synth::Layout::new(seed, 2000, 10);
    let img = if mode == "full" {
        let tiles: Vec<_> = (0..6)
            .map(|k| {
                let spec = FaceSpec::for_image(&layout, start + k * 10);
                diat_synth::image_io::Img::new(WIDTH, HEIGHT, diat_synth::render_rgb8(&spec))
            })
            .collect();
        diat_synth::sheet::grid(&tiles, 3, 2, [255, 255, 255])
    } else {
        diat_synth::sheet::sample_sheet(&layout, true)
    };
    diat_synth::image_io::write_png(std::path::Path::new(&out), &img).unwrap();
}
