//! Development helper: 4× zoom of the mouth region for an image with an attribute off/on.
use diat_synth::image_io::Img;
use diat_synth::{Attr, FaceSpec, Layout, render_rgb8};
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let seed: u64 = a[1].parse().unwrap();
    let per: u32 = a[2].parse().unwrap();
    let attr = Attr::from_name(&a[3]).unwrap();
    let out = &a[4];
    let (cx, cy): (usize, usize) = (a[5].parse().unwrap(), a[6].parse().unwrap());
    let layout = Layout::new(seed, 100000, per);
    let mut tiles = Vec::new();
    for idx in &a[7..] {
        let spec = FaceSpec::for_image(&layout, idx.parse().unwrap());
        for on in [false, true] {
            let s = spec.with(attr, on).unwrap();
            let img = Img::new(178, 218, render_rgb8(&s));
            let (w, h, z) = (60usize, 40usize, 4usize);
            let mut data = Vec::new();
            for y in 0..h * z {
                for x in 0..w * z {
                    let sx = (cx - w / 2 + x / z).min(177);
                    let sy = (cy - h / 2 + y / z).min(217);
                    let i = (sy * 178 + sx) * 3;
                    data.extend_from_slice(&img.data[i..i + 3]);
                }
            }
            tiles.push(Img::new(w * z, h * z, data));
            eprintln!("{idx} {on}: landmarks {:?}", s.landmarks().to_row());
        }
    }
    let img = diat_synth::sheet::grid(&tiles, 2, 2, [255, 255, 255]);
    diat_synth::image_io::write_png(std::path::Path::new(out), &img).unwrap();
}
