//! Resampling an RGB image through a similarity transform: bilinear interpolation, edge-clamped,
//! with k×k supersampling where the transform shrinks (a photo's large face into the 178×218
//! frame), so that downscaling averages instead of aliasing.

use crate::similarity::Similarity;
use image::RgbImage;

/// Bilinear sample at pixel-centre coordinates `(x, y)`, clamped to the image's edge.
#[inline]
pub fn sample_bilinear(img: &RgbImage, x: f64, y: f64) -> [f32; 3] {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let x = x.clamp(0.0, (w - 1) as f64);
    let y = y.clamp(0.0, (h - 1) as f64);
    let (x0, y0) = (x.floor() as usize, y.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (fx, fy) = ((x - x0 as f64) as f32, (y - y0 as f64) as f32);
    let raw = img.as_raw();
    let px = |xx: usize, yy: usize, c: usize| raw[(yy * w + xx) * 3 + c] as f32;
    let mut out = [0f32; 3];
    for (c, o) in out.iter_mut().enumerate() {
        let top = px(x0, y0, c) * (1.0 - fx) + px(x1, y0, c) * fx;
        let bottom = px(x0, y1, c) * (1.0 - fx) + px(x1, y1, c) * fx;
        *o = top * (1.0 - fy) + bottom * fy;
    }
    out
}

/// Samples per axis for a map whose destination pixels are `1/scale` source pixels wide.
pub fn supersampling(scale: f64) -> usize {
    if scale >= 1.0 || scale <= 0.0 {
        1
    } else {
        ((1.0 / scale) - 1e-6).ceil().clamp(1.0, 8.0) as usize
    }
}

/// The mean of `k×k` bilinear samples of `img` spread over the destination pixel at `(u, v)`,
/// which `to_src` maps into `img`.
#[inline]
pub fn sample_area(img: &RgbImage, to_src: &Similarity, u: f64, v: f64, k: usize) -> [f32; 3] {
    if k == 1 {
        let p = to_src.apply([u, v]);
        return sample_bilinear(img, p[0], p[1]);
    }
    let mut acc = [0f32; 3];
    for j in 0..k {
        for i in 0..k {
            let du = (i as f64 + 0.5) / k as f64 - 0.5;
            let dv = (j as f64 + 0.5) / k as f64 - 0.5;
            let p = to_src.apply([u + du, v + dv]);
            let s = sample_bilinear(img, p[0], p[1]);
            for c in 0..3 {
                acc[c] += s[c];
            }
        }
    }
    let n = (k * k) as f32;
    acc.map(|a| a / n)
}

/// Rounds a float RGB value to bytes.
#[inline]
pub fn to_u8(v: [f32; 3]) -> [u8; 3] {
    v.map(|c| c.round().clamp(0.0, 255.0) as u8)
}

/// Warps `src` into a `width × height` image: destination pixel `q` takes the source at
/// `to_dst⁻¹(q)`. Returns the image and the fraction of destination pixels whose source lies
/// inside `src` (the rest repeat its edge).
pub fn warp(src: &RgbImage, to_dst: &Similarity, width: u32, height: u32) -> (RgbImage, f32) {
    let to_src = to_dst.inverse();
    let k = supersampling(to_dst.scale());
    let (sw, sh) = (src.width() as f64, src.height() as f64);
    let mut out = RgbImage::new(width, height);
    let mut inside = 0usize;
    for (u, v, px) in out.enumerate_pixels_mut() {
        let (u, v) = (u as f64, v as f64);
        let p = to_src.apply([u, v]);
        if p[0] >= -0.5 && p[0] <= sw - 0.5 && p[1] >= -0.5 && p[1] <= sh - 0.5 {
            inside += 1;
        }
        px.0 = to_u8(sample_area(src, &to_src, u, v, k));
    }
    let total = (width as usize * height as usize).max(1);
    (out, inside as f32 / total as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_and_integer_shift_are_exact() {
        let img = RgbImage::from_fn(20, 10, |x, y| {
            image::Rgb([(x * 10) as u8, (y * 20) as u8, 7])
        });
        let (same, inside) = warp(&img, &Similarity::IDENTITY, 20, 10);
        assert_eq!(same, img);
        assert_eq!(inside, 1.0);
        let shift = Similarity {
            tx: -3.0,
            ty: -2.0,
            ..Similarity::IDENTITY
        };
        let (moved, inside) = warp(&img, &shift, 10, 5);
        assert_eq!(moved.get_pixel(0, 0), img.get_pixel(3, 2));
        assert_eq!(moved.get_pixel(9, 4), img.get_pixel(12, 6));
        assert_eq!(inside, 1.0);
        let (_, inside) = warp(
            &img,
            &Similarity {
                tx: 5.0,
                ..Similarity::IDENTITY
            },
            20,
            10,
        );
        assert!((inside - 0.75).abs() < 1e-6, "{inside}");
    }

    #[test]
    fn downscaling_averages() {
        // A one-pixel checkerboard shrunk 4× is uniform grey, not aliased stripes.
        let img = RgbImage::from_fn(64, 64, |x, y| {
            let v = if (x + y) % 2 == 0 { 255 } else { 0 };
            image::Rgb([v, v, v])
        });
        let (small, _) = warp(&img, &Similarity::new(0.25, 0.0, 0.0, 0.0), 16, 16);
        for p in small.pixels() {
            assert!((p.0[0] as i32 - 128).abs() <= 40, "{p:?}");
        }
        assert_eq!(supersampling(0.25), 4);
        assert_eq!(supersampling(2.0), 1);
    }
}
