//! Identity-preservation metrics against an exact reference: PSNR and SSIM, each over the whole
//! image, inside a mask and outside it.
//!
//! PSNR uses all three channels, peak 255; identical regions are reported as [`PSNR_CAP`] dB.
//! SSIM follows Wang et al. (2004): an 11×11 Gaussian window (σ = 1.5), K1 = 0.01, K2 = 0.03,
//! computed per RGB channel (windows clipped at the borders) and averaged; the SSIM map is then
//! averaged over the region's pixels.

use crate::image_io::Img;
use serde::Serialize;

/// PSNR reported for a region with zero error.
pub const PSNR_CAP: f64 = 100.0;

/// PSNR and SSIM over one region.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Quality {
    pub psnr: f64,
    pub ssim: f64,
    pub pixels: usize,
}

/// Metrics of one image: whole, inside the mask, outside the mask (the latter two only with a mask).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ImageQuality {
    pub whole: Quality,
    pub inside: Option<Quality>,
    pub outside: Option<Quality>,
}

fn psnr_from(sq: f64, n: usize) -> f64 {
    if n == 0 {
        return f64::NAN;
    }
    let mse = sq / (n * 3) as f64;
    if mse <= 0.0 {
        PSNR_CAP
    } else {
        (10.0 * (255.0f64 * 255.0 / mse).log10()).min(PSNR_CAP)
    }
}

fn gaussian_kernel() -> [f32; 11] {
    let mut k = [0f32; 11];
    let mut s = 0.0;
    for (i, v) in k.iter_mut().enumerate() {
        let x = i as f32 - 5.0;
        *v = (-x * x / (2.0 * 1.5 * 1.5)).exp();
        s += *v;
    }
    k.map(|v| v / s)
}

/// Separable Gaussian blur with the window clipped (and renormalised) at the borders.
fn blur(src: &[f32], w: usize, h: usize, k: &[f32; 11]) -> Vec<f32> {
    let mut tmp = vec![0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            let (mut a, mut ws) = (0.0, 0.0);
            for (i, kv) in k.iter().enumerate() {
                let xx = x as isize + i as isize - 5;
                if xx >= 0 && (xx as usize) < w {
                    a += kv * src[y * w + xx as usize];
                    ws += kv;
                }
            }
            tmp[y * w + x] = a / ws;
        }
    }
    let mut out = vec![0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            let (mut a, mut ws) = (0.0, 0.0);
            for (i, kv) in k.iter().enumerate() {
                let yy = y as isize + i as isize - 5;
                if yy >= 0 && (yy as usize) < h {
                    a += kv * tmp[yy as usize * w + x];
                    ws += kv;
                }
            }
            out[y * w + x] = a / ws;
        }
    }
    out
}

/// The SSIM map (mean over RGB channels) of two same-size images.
pub fn ssim_map(a: &Img, b: &Img) -> Vec<f32> {
    assert_eq!((a.w, a.h), (b.w, b.h), "SSIM of different sizes");
    let (w, h) = (a.w, a.h);
    let k = gaussian_kernel();
    let (c1, c2) = ((0.01f32 * 255.0).powi(2), (0.03f32 * 255.0).powi(2));
    let mut map = vec![0f32; w * h];
    for ch in 0..3 {
        let x: Vec<f32> = a
            .data
            .iter()
            .skip(ch)
            .step_by(3)
            .map(|&v| v as f32)
            .collect();
        let y: Vec<f32> = b
            .data
            .iter()
            .skip(ch)
            .step_by(3)
            .map(|&v| v as f32)
            .collect();
        let xx: Vec<f32> = x.iter().map(|v| v * v).collect();
        let yy: Vec<f32> = y.iter().map(|v| v * v).collect();
        let xy: Vec<f32> = x.iter().zip(&y).map(|(p, q)| p * q).collect();
        let (mx, my) = (blur(&x, w, h, &k), blur(&y, w, h, &k));
        let (sxx, syy, sxy) = (
            blur(&xx, w, h, &k),
            blur(&yy, w, h, &k),
            blur(&xy, w, h, &k),
        );
        for i in 0..w * h {
            let (ux, uy) = (mx[i], my[i]);
            let vx = sxx[i] - ux * ux;
            let vy = syy[i] - uy * uy;
            let cxy = sxy[i] - ux * uy;
            let s = ((2.0 * ux * uy + c1) * (2.0 * cxy + c2))
                / ((ux * ux + uy * uy + c1) * (vx + vy + c2));
            map[i] += s / 3.0;
        }
    }
    map
}

/// PSNR and SSIM of `out` against `reference`, split by `mask` (row-major, true = inside).
pub fn compare(out: &Img, reference: &Img, mask: Option<&[bool]>) -> ImageQuality {
    assert_eq!(
        (out.w, out.h),
        (reference.w, reference.h),
        "compare: different sizes"
    );
    let n = out.w * out.h;
    if let Some(m) = mask {
        assert_eq!(m.len(), n, "mask size");
    }
    let ssim = ssim_map(out, reference);
    let mut sq = [0f64; 3];
    let mut ss = [0f64; 3];
    let mut cnt = [0usize; 3];
    for i in 0..n {
        let e: f64 = (0..3)
            .map(|k| {
                let d = out.data[3 * i + k] as f64 - reference.data[3 * i + k] as f64;
                d * d
            })
            .sum();
        let region = match mask {
            Some(m) if m[i] => 1,
            Some(_) => 2,
            None => 0,
        };
        sq[0] += e;
        ss[0] += ssim[i] as f64;
        cnt[0] += 1;
        if region != 0 {
            sq[region] += e;
            ss[region] += ssim[i] as f64;
            cnt[region] += 1;
        }
    }
    let q = |r: usize| Quality {
        psnr: psnr_from(sq[r], cnt[r]),
        ssim: ss[r] / cnt[r].max(1) as f64,
        pixels: cnt[r],
    };
    ImageQuality {
        whole: q(0),
        inside: mask.map(|_| q(1)),
        outside: mask.map(|_| q(2)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise_img(seed: u32, w: usize, h: usize) -> Img {
        let data = (0..w * h * 3)
            .map(|i| {
                ((i as u32) ^ seed.wrapping_mul(0x9E37_79B9))
                    .wrapping_mul(2654435761)
                    .wrapping_shr(13) as u8
            })
            .collect();
        Img::new(w, h, data)
    }

    #[test]
    fn identical_images_are_perfect() {
        let a = noise_img(1, 40, 30);
        let q = compare(&a, &a, None);
        assert_eq!(q.whole.psnr, PSNR_CAP);
        assert!((q.whole.ssim - 1.0).abs() < 1e-6);
    }

    #[test]
    fn errors_only_inside_the_mask_show_only_inside() {
        let a = Img::filled(40, 30, [120, 130, 140]);
        let mut b = a.clone();
        let mask: Vec<bool> = (0..40 * 30).map(|i| (i % 40) < 10).collect();
        for y in 0..30 {
            for x in 0..3 {
                b.data[(y * 40 + x) * 3] = 200;
            }
        }
        let q = compare(&b, &a, Some(&mask));
        assert_eq!(q.outside.unwrap().psnr, PSNR_CAP);
        let inside = q.inside.unwrap();
        // 3 of 10 columns off by 80 in one channel: mse = 0.3 * 6400 / 3.
        let expect = 10.0 * (255.0f64 * 255.0 / (0.3 * 6400.0 / 3.0)).log10();
        assert!((inside.psnr - expect).abs() < 1e-9, "{}", inside.psnr);
        assert!(inside.ssim < 0.99);
        assert!(q.whole.psnr > inside.psnr);
        assert_eq!(inside.pixels + q.outside.unwrap().pixels, 1200);
    }

    #[test]
    fn ssim_drops_with_noise() {
        let a = noise_img(1, 40, 40);
        let b = noise_img(2, 40, 40);
        assert!(compare(&a, &b, None).whole.ssim < 0.2);
    }
}
