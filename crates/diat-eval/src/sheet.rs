//! Before/after contact sheets (`diat eval real --sheet`, `diat eval lfw --sheet`): pairs of
//! images side by side, four pairs per row, a caption under each image, the "after" caption green
//! when the edit counts as a success and red otherwise.

use crate::font::{draw_text, text_width};
use diat_align::image::{Rgb, RgbImage, imageops};

/// One before/after pair of a sheet.
pub struct SheetPair<'a> {
    pub before: &'a RgbImage,
    pub after: &'a RgbImage,
    pub before_caption: String,
    pub after_caption: String,
    /// Whether the after image counts as a success (caption colour).
    pub ok: bool,
}

/// The sheet of `pairs` (all images of one size; smaller than 128 px they are enlarged by an
/// integer factor, nearest neighbour, so every pixel stays visible). None without pairs.
pub fn pair_sheet(pairs: &[SheetPair<'_>]) -> Option<RgbImage> {
    let first = pairs.first()?;
    let (w, h) = first.before.dimensions();
    let scale = (128 / w.max(h).max(1)).max(1);
    let (tw, th) = (w * scale, h * scale);
    let caption = 12;
    let pad = 6;
    let n = pairs.len();
    let cols = n.min(4) as u32;
    let rows = n.div_ceil(4) as u32;
    let (cw, ch) = (2 * tw + pad, th + caption);
    let mut sheet = RgbImage::from_pixel(
        cols * cw + (cols + 1) * pad,
        rows * ch + (rows + 1) * pad,
        Rgb([255, 255, 255]),
    );
    let up = |img: &RgbImage| {
        if scale == 1 && img.dimensions() == (tw, th) {
            img.clone()
        } else {
            imageops::resize(img, tw, th, imageops::FilterType::Nearest)
        }
    };
    for (i, p) in pairs.iter().enumerate() {
        let (cx, cy) = ((i % 4) as u32, (i / 4) as u32);
        let x0 = pad + cx * (cw + pad);
        let y0 = pad + cy * (ch + pad);
        imageops::overlay(&mut sheet, &up(p.before), x0 as i64, y0 as i64);
        imageops::overlay(&mut sheet, &up(p.after), (x0 + tw + pad) as i64, y0 as i64);
        if text_width(&p.before_caption, 1) <= tw + pad {
            draw_text(&mut sheet, x0, y0 + th + 3, &p.before_caption, 1, [0, 0, 0]);
        }
        let color = if p.ok { [0, 120, 0] } else { [170, 0, 0] };
        if text_width(&p.after_caption, 1) <= tw + pad {
            draw_text(
                &mut sheet,
                x0 + tw + pad,
                y0 + th + 3,
                &p.after_caption,
                1,
                color,
            );
        }
    }
    Some(sheet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_scaling() {
        assert!(pair_sheet(&[]).is_none());
        let a = RgbImage::from_pixel(64, 64, Rgb([10, 20, 30]));
        let b = RgbImage::from_pixel(64, 64, Rgb([200, 20, 30]));
        let pairs: Vec<SheetPair<'_>> = (0..5)
            .map(|i| SheetPair {
                before: &a,
                after: &b,
                before_caption: format!("p={i}"),
                after_caption: "x".into(),
                ok: i % 2 == 0,
            })
            .collect();
        let s = pair_sheet(&pairs).unwrap();
        // 64 px tiles are doubled; 4 pairs per row, 2 rows.
        assert_eq!(s.width(), 4 * (2 * 128 + 6) + 5 * 6);
        assert_eq!(s.height(), 2 * (128 + 12) + 3 * 6);
        assert_eq!(s.get_pixel(6, 6).0, [10, 20, 30]);
        assert_eq!(s.get_pixel(6 + 128 + 6, 6).0, [200, 20, 30]);
        let big = RgbImage::new(250, 250);
        let one = [SheetPair {
            before: &big,
            after: &big,
            before_caption: String::new(),
            after_caption: String::new(),
            ok: true,
        }];
        assert_eq!(pair_sheet(&one).unwrap().width(), 2 * 250 + 6 + 2 * 6);
    }
}
