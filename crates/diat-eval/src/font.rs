//! A 5×7 bitmap font with just the characters the contact sheet's captions need (digits, `.`,
//! `=`, `-`, `?`, `p`, `d`, space), so that diat draws its numbers without a font file.

use diat_align::image::{Rgb, RgbImage};

/// Rows of 5 bits, top to bottom; bit 4 is the left column.
fn glyph(c: char) -> Option<[u8; 7]> {
    Some(match c {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C],
        '=' => [0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00],
        '-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        '?' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04],
        'p' => [0x00, 0x00, 0x1E, 0x11, 0x1E, 0x10, 0x10],
        'd' => [0x01, 0x01, 0x0D, 0x13, 0x11, 0x11, 0x0F],
        ' ' => [0; 7],
        _ => return None,
    })
}

/// Width in pixels of `text` at `scale` (6 px per character: 5 + 1 of spacing).
pub fn text_width(text: &str, scale: u32) -> u32 {
    text.chars().count() as u32 * 6 * scale
}

/// Draws `text` with its top-left corner at (`x`, `y`); characters without a glyph draw as `?`;
/// pixels outside the image are skipped.
pub fn draw_text(img: &mut RgbImage, x: u32, y: u32, text: &str, scale: u32, color: [u8; 3]) {
    for (i, c) in text.chars().enumerate() {
        let rows = glyph(c).or_else(|| glyph('?')).unwrap_or([0; 7]);
        let x0 = x + i as u32 * 6 * scale;
        for (r, bits) in rows.iter().enumerate() {
            for col in 0..5u32 {
                if bits & (0x10 >> col) == 0 {
                    continue;
                }
                for dy in 0..scale {
                    for dx in 0..scale {
                        let (px, py) = (x0 + col * scale + dx, y + r as u32 * scale + dy);
                        if px < img.width() && py < img.height() {
                            img.put_pixel(px, py, Rgb(color));
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_inside_and_clips() {
        let mut img = RgbImage::new(40, 10);
        draw_text(&mut img, 0, 0, "p=0.5", 1, [255, 255, 255]);
        let lit = img.pixels().filter(|p| p.0[0] == 255).count();
        assert!(lit > 20, "{lit}");
        // '1' has 10 lit pixels; clipping at the right edge never panics.
        let mut small = RgbImage::new(8, 8);
        draw_text(&mut small, 4, 4, "1d?x", 2, [9, 9, 9]);
        assert_eq!(text_width("p=0.93", 1), 36);
    }
}
