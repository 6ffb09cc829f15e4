//! Writes rendered faces and their JPEGs (this crate's encoder and `jpeg-encoder`, q90) plus a
//! PNG sheet original | ours decoded | jpeg-encoder decoded: `jpeg_sheet OUT_DIR`.
use diat_synth::image_io::{Img, decode, encode_jpeg_crate_into, encode_jpeg_into, write_png};
use std::path::Path;
fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "jpeg_sheet".into());
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir).unwrap();
    let layout = diat_synth::Layout::new(11, 6, 3);
    let (w, h) = (diat_synth::WIDTH, diat_synth::HEIGHT);
    let mut sheet = Img::filled(w * 3, h * 6, [255, 255, 255]);
    for i in 0..6u32 {
        let face = Img::new(
            w,
            h,
            diat_synth::render_rgb8(&diat_synth::FaceSpec::for_image(&layout, i)),
        );
        let (mut a, mut b) = (Vec::new(), Vec::new());
        encode_jpeg_into(&face, 90, &mut a).unwrap();
        encode_jpeg_crate_into(&face, 90, &mut b).unwrap();
        std::fs::write(dir.join(format!("face{i}_ours.jpg")), &a).unwrap();
        std::fs::write(dir.join(format!("face{i}_jpeg_encoder.jpg")), &b).unwrap();
        write_png(&dir.join(format!("face{i}.png")), &face).unwrap();
        let da = decode(&a, Path::new("a.jpg")).unwrap();
        let db = decode(&b, Path::new("b.jpg")).unwrap();
        let psnr = |x: &Img| {
            let mse = face
                .data
                .iter()
                .zip(&x.data)
                .map(|(p, q)| (*p as f64 - *q as f64).powi(2))
                .sum::<f64>()
                / face.data.len() as f64;
            10.0 * (255.0f64.powi(2) / mse).log10()
        };
        println!(
            "face {i}: ours {} B {:.2} dB, jpeg-encoder {} B {:.2} dB",
            a.len(),
            psnr(&da),
            b.len(),
            psnr(&db)
        );
        sheet.blit(&face, 0, h * i as usize);
        sheet.blit(&da, w, h * i as usize);
        sheet.blit(&db, 2 * w, h * i as usize);
    }
    write_png(&dir.join("sheet.png"), &sheet).unwrap();
}
