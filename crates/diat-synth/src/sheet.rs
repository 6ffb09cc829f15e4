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
    let mut out = Img::filled(
        cols * tw + (cols + 1) * pad,
        rows * th + (rows + 1) * pad,
        bg,
    );
    for (i, t) in tiles.iter().enumerate() {
        let (c, r) = (i % cols, i / cols);
        out.blit(t, pad + c * (tw + pad), pad + r * (th + pad));
    }
    out
}

/// The default sample sheet: 4 rows of 6 tiles. The first two rows are 12 faces of 12 different
/// identities; the last two rows are six counterfactual pairs (original, then its twin with one
/// attribute flipped): glasses added, mouth opened, smile added, female → male, young → old, glasses
/// removed. Tiles are at half size if `half`.
pub fn sample_sheet(layout: &Layout, half: bool) -> Img {
    let mut r = Renderer::new();
    let mut buf = vec![0u8; WIDTH * HEIGHT * 3];
    let mut tile = |spec: &FaceSpec| {
        r.render_rgb8(spec, &mut buf);
        let img = Img::new(WIDTH, HEIGHT, buf.clone());
        if half { downscale2(&img) } else { img }
    };
    let per = layout.per_identity.max(1);
    let ids = layout.identities().max(1);
    let image_of = |id: u32| ((id % ids) * per + id % per).min(layout.count - 1);
    let mut tiles = Vec::new();
    for id in 0..12 {
        tiles.push(tile(&FaceSpec::for_image(layout, image_of(id))));
    }
    let flips = [
        (Attr::Eyeglasses, false),
        (Attr::MouthSlightlyOpen, false),
        (Attr::Smiling, false),
        (Attr::Male, false),
        (Attr::Young, true),
        (Attr::Eyeglasses, true),
    ];
    let mut next = 12;
    for (a, from) in flips {
        // The next identity whose image shows the attribute's source value (else any).
        let spec = (next..next + 64)
            .map(|id| FaceSpec::for_image(layout, image_of(id)))
            .find(|s| s.drawn.get(a) == Some(from))
            .unwrap_or_else(|| FaceSpec::for_image(layout, image_of(next)));
        next = spec.identity.id + 1;
        tiles.push(tile(&spec));
        tiles.push(tile(&spec.flipped(a).expect("flippable")));
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
                let s = at(2 * x, 2 * y)
                    + at(2 * x + 1, 2 * y)
                    + at(2 * x, 2 * y + 1)
                    + at(2 * x + 1, 2 * y + 1);
                data.push(((s + 2) / 4) as u8);
            }
        }
    }
    Img::new(w, h, data)
}
