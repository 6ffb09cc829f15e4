//! Development helper: micro-benchmarks of raster primitives.
use diat_synth::raster::*;
fn main() {
    let mut c = Canvas::new(178, 218);
    let n = 5000;
    let t = std::time::Instant::now();
    for k in 0..n {
        let g = k as f32 * 1e-6;
        c.fill_rows(|y| (Rgb::new(0.5 + g, 0.4, y as f32 * 0.001), Rgb::new(0.001, 0.0, 0.0)));
    }
    println!("fill: {:.1} us", t.elapsed().as_secs_f64() * 1e6 / n as f64);
    let e = Ellipse::new(89.0, 100.0, 44.0, 68.0, Rot::angle(0.03));
    let t = std::time::Instant::now();
    for _ in 0..n {
        c.draw(&e, Style::CRISP, &Solid(Rgb::new(0.5, 0.5, 0.5)));
    }
    println!("ellipse solid (9.4k px): {:.1} us", t.elapsed().as_secs_f64() * 1e6 / n as f64);
    let t = std::time::Instant::now();
    for _ in 0..n {
        c.draw(&e, Style::CRISP, &Ellipsoid { color: Rgb::new(0.8, 0.6, 0.5), shape: e, light: [0.3, -0.3, 0.8], ambient: 0.6, diffuse: 0.4 });
    }
    println!("ellipse shaded: {:.1} us", t.elapsed().as_secs_f64() * 1e6 / n as f64);
    let t = std::time::Instant::now();
    for _ in 0..n {
        c.draw(&e, Style::soft(10.0, 0.5), &Solid(Rgb::new(0.5, 0.5, 0.5)));
    }
    println!("ellipse soft: {:.1} us", t.elapsed().as_secs_f64() * 1e6 / n as f64);
    let mut out = vec![0u8; 178 * 218 * 3];
    let t = std::time::Instant::now();
    for _ in 0..n {
        c.to_rgb8(&mut out);
    }
    println!("to_rgb8: {:.1} us", t.elapsed().as_secs_f64() * 1e6 / n as f64);
}
