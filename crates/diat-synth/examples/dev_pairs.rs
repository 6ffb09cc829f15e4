//! Development helper: renders given images with an attribute off/on side by side (full size).
use diat_synth::image_io::Img;
use diat_synth::{Attr, FaceSpec, Layout, render_rgb8};
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let seed: u64 = a[1].parse().unwrap();
    let per: u32 = a[2].parse().unwrap();
    let attr = Attr::from_name(&a[3]).unwrap();
    let out = &a[4];
    let layout = Layout::new(seed, 100000, per);
    let mut tiles = Vec::new();
    for idx in &a[5..] {
        let spec = FaceSpec::for_image(&layout, idx.parse().unwrap());
        for on in [false, true] {
            tiles.push(Img::new(178, 218, render_rgb8(&spec.with(attr, on).unwrap())));
        }
    }
    let img = diat_synth::sheet::grid(&tiles, 4, 2, [255, 255, 255]);
    diat_synth::image_io::write_png(std::path::Path::new(out), &img).unwrap();
}
