//! Contact sheets: grids of faces, with counterfactual pairs side by side.

use crate::attrs::Attr;
use crate::face::{FaceSpec, HEIGHT, WIDTH};
use crate::image_io::Img;
use crate::layout::Layout;
use crate::render::Renderer;

/// Lays tiles (all the same size) out in a grid with `pad` pixels of `bg` between them.
pub fn grid(tiles: &[Img], cols: usize, pad: usize, bg: [u8; 3]) -> Img {
    if tiles.is_empty() {
        return Img::filled(1, 1, bg);
    }
    let cols = cols.max(1);
    let rows = tiles.len().div_ceil(cols);
    let (tw, th) = (tiles[0].w, tiles[0].h);
    let mut out = Img::filled(cols * tw + (cols + 1) * pad, rows * th + (rows + 1) * pad, bg);
    for (i, t) in tiles.iter().enumerate() {
        let (c, r) = (i % cols, i / cols);
        out.blit(t, pad + c * (tw + pad), pad + r * (th + pad));
    }
    out
}

/// The default sample sheet: 4 rows of 6 tiles. The first two rows are 12 plain faces of the layout;
/// the last two rows are three counterfactual pairs each (original, then its twin with one attribute
/// flipped: Eyeglasses, Mouth_Slightly_Open, Smiling, Male, Young, Eyeglasses), at half size if `half`.
pub fn sample_sheet(layout: &Layout, half: bool) -> Img {
    let mut r = Renderer::new();
    let mut buf = vec![0u8; WIDTH * HEIGHT * 3];
    let mut tile = |spec: &FaceSpec| {
        r.render_rgb8(spec, &mut buf);
        let img = Img::new(WIDTH, HEIGHT, buf.clone());
        if half { downscale2(&img) } else { img }
    };
    let n = layout.count.max(1);
    let pick = |k: u32| (k * 7 + k / 3) % n;
    let mut tiles = Vec::new();
    for k in 0..12 {
        tiles.push(tile(&FaceSpec::for_image(layout, pick(k))));
    }
    let flips = [Attr::Eyeglasses, Attr::MouthSlightlyOpen, Attr::Smiling, Attr::Male, Attr::Young, Attr::Eyeglasses];
    for (k, a) in flips.iter().enumerate() {
        let spec = FaceSpec::for_image(layout, pick(20 + k as u32 * 5));
        tiles.push(tile(&spec));
        if let Ok(twin) = spec.flipped(*a) {
            tiles.push(tile(&twin));
        }
    }
    grid(&tiles, 6, 4, [255, 255, 255])
}

/// Halves an image with a 2×2 box filter.
pub fn downscale2(img: &Img) -> Img {
    let (w, h) = (img.w / 2, img.h / 2);
    let mut data = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            for k in 0..3 {
                let at = |xx: usize, yy: usize| img.data[(yy * img.w + xx) * 3 + k] as u32;
                let s = at(2 * x, 2 * y) + at(2 * x + 1, 2 * y) + at(2 * x, 2 * y + 1) + at(2 * x + 1, 2 * y + 1);
                data.push(((s + 2) / 4) as u8);
            }
        }
    }
    Img::new(w, h, data)
}
