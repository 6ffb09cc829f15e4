//! The Gaussian blur B(x) of the global enhancement loss — paper §3.2, Eq. (11), with the
//! standard deviation σ = 1.8 of §5.1.
//!
//! A separable, normalised kernel of radius ⌈3σ⌉ (13 taps at σ = 1.8), applied per channel with
//! reflection padding so the output has the input's size and borders keep their brightness.
//! The image side must exceed the radius. Mirrored by `gaussian_blur` in
//! `scripts/reference/diat_reference.py`.

use tch::Tensor;

/// σ of the paper's blur (§5.1).
pub const PAPER_SIGMA: f64 = 1.8;

/// Checks `key = sigma` for images of side `image_size`: positive, and a radius ⌈3σ⌉ below the
/// side (what reflection padding needs).
pub fn check_sigma(key: &str, sigma: f64, image_size: i64) -> crate::Result<()> {
    let hi = ((image_size - 1) as f64 / 3.0).floor().min(20.0);
    crate::limits::in_range(key, sigma, 0.01, hi.max(0.01))
}

/// The normalised 1-d Gaussian kernel of standard deviation `sigma` and radius ⌈3σ⌉ (computed in
/// f64, returned as f32 values).
pub fn gaussian_kernel(sigma: f64) -> Vec<f32> {
    assert!(sigma > 0.0, "sigma must be positive");
    let radius = (3.0 * sigma).ceil() as i64;
    let g: Vec<f64> = (-radius..=radius)
        .map(|i| (-((i * i) as f64) / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f64 = g.iter().sum();
    g.iter().map(|v| (v / sum) as f32).collect()
}

/// B(x): blurs each channel of `x` (N×C×H×W) with a Gaussian of standard deviation `sigma`.
pub fn gaussian_blur(x: &Tensor, sigma: f64) -> Tensor {
    let g = gaussian_kernel(sigma);
    let k = g.len() as i64;
    let r = k / 2;
    let c = x.size()[1];
    let g = Tensor::from_slice(&g)
        .to_device(x.device())
        .to_kind(x.kind());
    let h = x.reflection_pad2d([r, r, r, r]);
    let h = h.conv2d(
        &g.view([1, 1, 1, k])
            .expand([c, 1, 1, k], false)
            .contiguous(),
        None::<Tensor>,
        [1, 1],
        [0, 0],
        [1, 1],
        c,
    );
    h.conv2d(
        &g.view([1, 1, k, 1])
            .expand([c, 1, k, 1], false)
            .contiguous(),
        None::<Tensor>,
        [1, 1],
        [0, 0],
        [1, 1],
        c,
    )
}

/// B(x) with the paper's σ = 1.8.
pub fn paper_blur(x: &Tensor) -> Tensor {
    gaussian_blur(x, PAPER_SIGMA)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn kernel_is_normalised_and_blur_keeps_constants() {
        let g = gaussian_kernel(PAPER_SIGMA);
        assert_eq!(g.len(), 13);
        assert!((g.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(g[6] > g[5] && (g[0] - g[12]).abs() < 1e-9);
        let x = Tensor::full([1, 3, 16, 16], 0.3, (Kind::Float, Device::Cpu));
        let y = paper_blur(&x);
        assert_eq!(y.size(), [1, 3, 16, 16]);
        assert!((y - 0.3).abs().max().double_value(&[]) < 1e-6);
        // An impulse spreads into the kernel's outer product.
        let imp = Tensor::zeros([1, 1, 15, 15], (Kind::Float, Device::Cpu));
        let _ = imp.get(0).get(0).get(7).get(7).fill_(1.0);
        let b = gaussian_blur(&imp, PAPER_SIGMA);
        assert!((b.double_value(&[0, 0, 7, 7]) - f64::from(g[6] * g[6])).abs() < 1e-7);
    }
}
