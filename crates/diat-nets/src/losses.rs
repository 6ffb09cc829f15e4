//! The losses of DIAT (paper §3, Eq. 1–11) and DIAT-A (§4, Eq. 12–14), one function per equation.
//!
//! Conventions (mirrored by `scripts/reference/diat_reference.py`, which the parity tests compare
//! against):
//! * images are N×3×S×S in [-1, 1];
//! * a squared Frobenius norm in pixel space (Eq. 5, 6, 8, 10, 11) is summed over each image and
//!   averaged over the batch — the paper's sums over a data set become expectations, as in Eq. (7);
//! * a feature-space loss (Eq. 1, 12) is `‖φ_l(x̂) − φ_l(x)‖²_F / (2·C_l·H_l·W_l)` per image,
//!   averaged over the batch;
//! * expectations over a batch are means.
//!
//! The GAN terms. Eq. (3), (7) and (14) as printed read `E[1 − log D(T(x))]`, a typo for the
//! standard GAN game `min_T max_D E_a[log D(a)] + E_x[log(1 − D(T(x)))]` (Goodfellow et al.).
//! D outputs a logit `l` (D(·) = σ(l)), so D's side is the binary cross-entropy
//! `softplus(−l_real) + softplus(l_fake)` ([`eq3_discriminator_loss`], minimised), and T's side is
//! either the non-saturating `−log D(T(x)) = softplus(−l_fake)` (the default, as in nearly every
//! GAN implementation: strong gradients when D wins) or the literal minimax
//! `log(1 − D(T(x))) = −softplus(l_fake)` ([`GanLoss`]).
//!
//! Unspecified weights: the paper gives no `w_4`, `w_5` for Eq. (2), (4), (13); we use 0.5 each
//! ([`IDENTITY_LAYERS`]). Eq. (10) sums `β_i ℓ_content^{φ,i}` for `i = 0, 1, 2` with
//! `β = (0.1, 0.5, 1)` (§5.1); we read `i` as the first three conv layers of VGG-Face
//! (conv1_1, conv1_2, conv2_1) ([`LOCAL_ENHANCE_LAYERS`]).
//!
//! In DIAT-A, D is trained with the GAN term only: Eq. (14) as a min-max would have D *maximise*
//! the adaptive identity loss, which the paper clearly does not intend (§4.1: D's features change
//! "along with the updating of discriminator"). T minimises the whole of Eq. (14).

use crate::denoise::DenoiseNet;
use crate::discriminator::Discriminator;
use crate::vggface::VggFace;
use tch::{Kind, Tensor, nn::Module};

/// `(conv layer, weight)` pairs of the perceptual identity losses, Eq. (2), (4) and (13): the 4th
/// and 5th conv layers, weighted 0.5 each.
pub const IDENTITY_LAYERS: [(usize, f64); 2] = [(4, 0.5), (5, 0.5)];

/// `(VGG-Face conv layer, β)` of the local enhancement loss, Eq. (10) and §5.1.
pub const LOCAL_ENHANCE_LAYERS: [(usize, f64); 3] = [(1, 0.1), (2, 0.5), (3, 1.0)];

/// T's side of the GAN attribute loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GanLoss {
    /// Minimise `−log D(T(x))`.
    #[default]
    NonSaturating,
    /// Minimise `log(1 − D(T(x)))` (the literal minimax game).
    Saturating,
}

/// `‖d‖²_F` of each image of the batch `d`, averaged over the batch.
pub fn per_image_squared_norm(d: &Tensor) -> Tensor {
    d.square()
        .flatten(1, -1)
        .sum_dim_intlist(1, false, Kind::Float)
        .mean(Kind::Float)
}

/// Eq. (1): the content (perceptual) loss `‖φ_l(x̂) − φ_l(x)‖²_F / (2 C_l H_l W_l)` between two
/// feature maps N×C×H×W, averaged over the batch.
pub fn eq1_content_loss(phi_hat: &Tensor, phi: &Tensor) -> Tensor {
    let s = phi.size();
    let chw = (s[1] * s[2] * s[3]) as f64;
    per_image_squared_norm(&(phi_hat - phi)) / (2.0 * chw)
}

/// `Σ_l w_l ℓ(a_l, b_l)` with `ℓ` = Eq. (1)/(12) over 1-based layer indices into two feature lists.
pub fn weighted_content_loss(a: &[Tensor], b: &[Tensor], layers: &[(usize, f64)]) -> Tensor {
    layers
        .iter()
        .map(|&(l, w)| eq1_content_loss(&a[l - 1], &b[l - 1]) * w)
        .reduce(|s, t| s + t)
        .expect("at least one layer")
}

fn deepest(layers: &[(usize, f64)]) -> usize {
    layers
        .iter()
        .map(|&(l, _)| l)
        .max()
        .expect("at least one layer")
}

/// VGG-Face features of `a` and `b` (same batch size) in one pass over their concatenation.
fn vgg_pair(vgg: &VggFace, a: &Tensor, b: &Tensor, upto: usize) -> (Vec<Tensor>, Vec<Tensor>) {
    let n = a.size()[0];
    let f = vgg.features(&Tensor::cat(&[a, b], 0), upto);
    (
        f.iter().map(|t| t.narrow(0, 0, n)).collect(),
        f.iter().map(|t| t.narrow(0, n, n)).collect(),
    )
}

/// Eq. (2): the perceptual identity loss `Σ_{l=4,5} w_l ℓ_content^{φ,l}(T(x), x)` on VGG-Face.
/// `tx` is T(x); `layers` is usually [`IDENTITY_LAYERS`].
pub fn eq2_perceptual_identity_loss(
    vgg: &VggFace,
    tx: &Tensor,
    x: &Tensor,
    layers: &[(usize, f64)],
) -> Tensor {
    let (ft, fx) = vgg_pair(vgg, tx, x, deepest(layers));
    weighted_content_loss(&ft, &fx, layers)
}

/// Eq. (3), D's side: `−(E_a log D(a) + E_x log(1 − D(T(x))))` from D's logits on guided-set
/// images and on transformed images (pass `T(x)` detached). Minimised by D.
pub fn eq3_discriminator_loss(real_logits: &Tensor, fake_logits: &Tensor) -> Tensor {
    (-real_logits).softplus().mean(Kind::Float) + fake_logits.softplus().mean(Kind::Float)
}

/// Eq. (3), T's side, from D's logits on `T(x)`: `E −log D(T(x))` (non-saturating) or
/// `E log(1 − D(T(x)))` (saturating). Minimised by T.
pub fn eq3_generator_loss(fake_logits: &Tensor, gan: GanLoss) -> Tensor {
    match gan {
        GanLoss::NonSaturating => (-fake_logits).softplus().mean(Kind::Float),
        GanLoss::Saturating => -fake_logits.softplus().mean(Kind::Float),
    }
}

/// The R1 gradient penalty (Mescheder, Geiger, Nowozin 2018; not in the DIAT paper) before its
/// weight γ: `½ E‖∇_a D(a)‖²` over guided-set images `real` (which must require grad) from D's
/// logits on them, with the graph kept so the penalty trains D. It keeps D's response to its
/// input smooth, so T is not pushed towards high-frequency patterns that only D reads.
pub fn r1_penalty(real_logits: &Tensor, real: &Tensor) -> Tensor {
    let g = Tensor::run_backward(&[&real_logits.sum(Kind::Float)], &[real], true, true);
    g[0].to_kind(Kind::Float)
        .square()
        .sum_dim_intlist([1i64, 2, 3].as_slice(), false, Kind::Float)
        .mean(Kind::Float)
        * 0.5
}

/// Total variation of T's change (not in the DIAT paper): the mean absolute difference between
/// neighbouring pixels of `change = T(x) − x`, across rows plus across columns, per element.
/// A smooth change (a mouth opened, glasses taken off) costs little at its edges; a speckled,
/// many-coloured texture costs at every pixel — the adversarial stage's texture on real faces
/// (docs/training.md) is what it is for.
pub fn tv_change(change: &Tensor) -> Tensor {
    let c = change.to_kind(Kind::Float);
    let (h, w) = (c.size()[2], c.size()[3]);
    let dy = (c.narrow(2, 1, h - 1) - c.narrow(2, 0, h - 1))
        .abs()
        .mean(Kind::Float);
    let dx = (c.narrow(3, 1, w - 1) - c.narrow(3, 0, w - 1))
        .abs()
        .mean(Kind::Float);
    dy + dx
}

/// Eq. (4): the reconstruction network's objective `Σ_{l=4,5} w_l ℓ_content^{φ,l}(g(x), x)`.
pub fn eq4_reconstruction_objective(
    vgg: &VggFace,
    gx: &Tensor,
    x: &Tensor,
    layers: &[(usize, f64)],
) -> Tensor {
    eq2_perceptual_identity_loss(vgg, gx, x, layers)
}

/// Eq. (5): the denoising network's objective `‖f(g(x)) − x‖²_F + ‖f(x) − x‖²_F` (`gx` = g(x),
/// detached by the caller).
pub fn eq5_denoise_objective(f: &DenoiseNet, gx: &Tensor, x: &Tensor) -> Tensor {
    let n = x.size()[0];
    let out = f.forward(&Tensor::cat(&[gx, x], 0));
    per_image_squared_norm(&(out.narrow(0, 0, n) - x))
        + per_image_squared_norm(&(out.narrow(0, n, n) - x))
}

/// Eq. (6): the perceptual regulariser `ℓ_smooth = ‖f(T(x)) − T(x)‖²_F`.
pub fn eq6_smoothness(f: &DenoiseNet, tx: &Tensor) -> Tensor {
    per_image_squared_norm(&(f.forward(tx) - tx))
}

/// Weights of the DIAT objective, Eq. (7) (§5.1: λ = 0.1, γ = 0.001).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DiatLossConfig {
    /// λ, weight of the perceptual identity loss.
    pub lambda: f64,
    /// γ, weight of the smoothness regulariser.
    pub gamma: f64,
    /// `(VGG-Face conv layer, w_l)` of the identity loss.
    pub identity_layers: Vec<(usize, f64)>,
    pub gan: GanLoss,
}

impl Default for DiatLossConfig {
    fn default() -> Self {
        Self {
            lambda: 0.1,
            gamma: 0.001,
            identity_layers: IDENTITY_LAYERS.to_vec(),
            gan: GanLoss::default(),
        }
    }
}

/// The terms of T's objective; `total` is what T minimises.
#[derive(Debug)]
pub struct ObjectiveTerms {
    pub total: Tensor,
    /// The GAN attribute term (T's side of Eq. 3).
    pub gan: Tensor,
    /// The (adaptive) perceptual identity loss, before its weight λ (none in DIAT1).
    pub identity: Option<Tensor>,
    /// The smoothness regulariser before γ (DIAT and DIAT3 only).
    pub smooth: Option<Tensor>,
}

/// Eq. (7), T's side: `GAN(T(x)) + λ ℓ_id(x) + γ ℓ_smooth(T(x))` with `tx` = T(x), for every
/// DIAT variant of §5.1: without `f` the regulariser is dropped (DIAT2), without `vgg` the
/// identity term too (DIAT1). D's side of Eq. (7) is [`eq3_discriminator_loss`] (the other terms
/// do not depend on D).
pub fn eq7_diat_objective(
    tx: &Tensor,
    x: &Tensor,
    d: &Discriminator,
    vgg: Option<&VggFace>,
    f: Option<&DenoiseNet>,
    cfg: &DiatLossConfig,
) -> ObjectiveTerms {
    let gan = eq3_generator_loss(&d.logits(tx), cfg.gan);
    let identity = vgg.map(|v| eq2_perceptual_identity_loss(v, tx, x, &cfg.identity_layers));
    let smooth = f.map(|f| eq6_smoothness(f, tx));
    // Summed out of place: tch's `+=` would add into the GAN term's own storage.
    let mut parts = vec![gan.shallow_clone()];
    if let Some(i) = &identity {
        parts.push(i * cfg.lambda);
    }
    if let Some(s) = &smooth {
        parts.push(s * cfg.gamma);
    }
    let total = parts
        .into_iter()
        .reduce(|a, b| a + b)
        .expect("the GAN term");
    ObjectiveTerms {
        total,
        gan,
        identity,
        smooth,
    }
}

/// Eq. (8): T's pre-training reconstruction loss `‖x − T(x)‖²_F`.
pub fn eq8_reconstruction_loss(tx: &Tensor, x: &Tensor) -> Tensor {
    per_image_squared_norm(&(x - tx))
}

/// Eq. (9): D's pre-training loss `‖y − D(x)‖²` with D(x) = σ(logit) and attribute labels
/// `y` ∈ {0, 1} (`[N]`), averaged over the batch.
pub fn eq9_discriminator_pretrain_loss(logits: &Tensor, y: &Tensor) -> Tensor {
    (y - logits.sigmoid()).square().mean(Kind::Float)
}

/// Eq. (10): the local enhancement loss
/// `‖(1 − m) ∘ (E(T(x)) − x)‖²_F + Σ_i β_i ℓ_content^{φ,i}(m ∘ T(x), m ∘ E(T(x)))`, with `etx` =
/// E(x, T(x)), `tx` = T(x), the attribute mask `m` (N×1×S×S, 1 inside the attribute region) and
/// `betas` usually [`LOCAL_ENHANCE_LAYERS`].
///
/// Normalisation (the paper gives none for the pixel term): each term is a mean over its own
/// region — the pixel term over the pixels outside the mask ([`eq10_pixel_term`]), the content
/// terms (Eq. (1)) divided by the mask's share of the image ([`eq10_content_term`]). The literal
/// Frobenius norm outweighs the normalised content terms by 2·3·H·W (≈ 10⁵ at 128 px) and E
/// learns to copy the input everywhere (a demo run: 0% attribute success); with whole-image means
/// the mouth (≈ 10% of the crop) still weighs 9× less than the rest, and on synthetic mouth_open
/// with the same T, E kept the attribute on 32% of the faces against T(x)'s 56%; with these
/// per-region means, 56%.
pub fn eq10_local_enhancement_loss(
    vgg: &VggFace,
    etx: &Tensor,
    tx: &Tensor,
    x: &Tensor,
    mask: &Tensor,
    betas: &[(usize, f64)],
) -> Tensor {
    let (ft, fe) = vgg_pair(vgg, &(mask * tx), &(mask * etx), deepest(betas));
    eq10_pixel_term(etx, x, mask) + eq10_content_term(&ft, &fe, mask, betas)
}

/// Eq. (10)'s first term: `‖(1 − m) ∘ (E − x)‖²_F / 2` per element outside the mask, i.e.
/// Eq. (1) on the image divided by the share of the batch's pixels outside the mask.
pub fn eq10_pixel_term(etx: &Tensor, x: &Tensor, mask: &Tensor) -> Tensor {
    let outside = (1f64 - mask).mean(Kind::Float).clamp_min(1e-6);
    eq1_content_loss(&((1f64 - mask) * (etx - x)), &x.zeros_like()) / outside
}

/// Eq. (10)'s second term: `Σ_i β_i ℓ_content^{φ,i}` on features of the masked images, divided by
/// the share of the batch's pixels inside the mask.
pub fn eq10_content_term(
    ft: &[Tensor],
    fe: &[Tensor],
    mask: &Tensor,
    betas: &[(usize, f64)],
) -> Tensor {
    weighted_content_loss(ft, fe, betas) / mask.mean(Kind::Float).clamp_min(1e-6)
}

/// Eq. (11): the global enhancement loss `‖E(B(x)) − x‖²_F`, with `ebx` = E(B(x)) (see
/// [`crate::blur::paper_blur`]).
pub fn eq11_global_enhancement_loss(ebx: &Tensor, x: &Tensor) -> Tensor {
    per_image_squared_norm(&(ebx - x))
}

/// Eq. (12): the adaptive content loss `‖D_l(x̂) − D_l(x)‖²_F / (2 C_l H_l W_l)` on feature maps of
/// the discriminator, averaged over the batch.
pub fn eq12_adaptive_content_loss(d_hat: &Tensor, d: &Tensor) -> Tensor {
    eq1_content_loss(d_hat, d)
}

/// D on `[T(x); x]` in one pass: T(x)'s logits and the features of both halves.
fn d_pair(d: &Discriminator, tx: &Tensor, x: &Tensor) -> (Tensor, Vec<Tensor>, Vec<Tensor>) {
    let n = tx.size()[0];
    let out = d.forward(&Tensor::cat(&[tx, x], 0));
    let ft = out.features.iter().map(|t| t.narrow(0, 0, n)).collect();
    let fx = out.features.iter().map(|t| t.narrow(0, n, n)).collect();
    (out.logits.narrow(0, 0, n), ft, fx)
}

/// Eq. (13): the adaptive perceptual identity loss `Σ_{l=4,5} w_l ℓ_dynamic^{D,l}(T(x), x)`.
pub fn eq13_adaptive_identity_loss(
    d: &Discriminator,
    tx: &Tensor,
    x: &Tensor,
    layers: &[(usize, f64)],
) -> Tensor {
    let (_, ft, fx) = d_pair(d, tx, x);
    weighted_content_loss(&ft, &fx, layers)
}

/// Weights of the DIAT-A objective, Eq. (14) (§5.1: λ = 0.1).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DiatALossConfig {
    /// λ, weight of the adaptive perceptual identity loss.
    pub lambda: f64,
    /// `(D conv layer, w_l)` of the adaptive identity loss.
    pub identity_layers: Vec<(usize, f64)>,
    pub gan: GanLoss,
}

impl Default for DiatALossConfig {
    fn default() -> Self {
        Self {
            lambda: 0.1,
            identity_layers: IDENTITY_LAYERS.to_vec(),
            gan: GanLoss::default(),
        }
    }
}

/// Eq. (14), T's side: `GAN(T(x)) + λ ℓ_id^dynamic(x)`, from one pass of D over `[T(x); x]`
/// (logits and features shared). D's side is [`eq3_discriminator_loss`].
pub fn eq14_diat_a_objective(
    tx: &Tensor,
    x: &Tensor,
    d: &Discriminator,
    cfg: &DiatALossConfig,
) -> ObjectiveTerms {
    let (logits, ft, fx) = d_pair(d, tx, x);
    let gan = eq3_generator_loss(&logits, cfg.gan);
    let identity = weighted_content_loss(&ft, &fx, &cfg.identity_layers);
    let total = &gan + &identity * cfg.lambda;
    ObjectiveTerms {
        total,
        gan,
        identity: Some(identity),
        smooth: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn content_loss_normalisation() {
        // One image, C·H·W = 2·1·2 = 4, squared difference sums to 4 → 4 / (2·4) = 0.5.
        let a = Tensor::from_slice(&[1.0f32, 1.0, 1.0, 1.0]).view([1, 2, 1, 2]);
        let b = Tensor::zeros([1, 2, 1, 2], (Kind::Float, Device::Cpu));
        assert!((eq1_content_loss(&a, &b).double_value(&[]) - 0.5).abs() < 1e-7);
        // The batch mean: a second identical pair leaves it unchanged.
        let (a2, b2) = (Tensor::cat(&[&a, &a], 0), Tensor::cat(&[&b, &b], 0));
        assert!((eq12_adaptive_content_loss(&a2, &b2).double_value(&[]) - 0.5).abs() < 1e-7);
    }

    #[test]
    fn tv_of_a_change_counts_neighbour_differences() {
        // One channel, 2×3: rows [0 1 0], [0 0 0]. Across rows: |0-0|,|0-1|,|0-0| → mean 1/3;
        // across columns: |1-0|,|0-1|,|0-0|,|0-0| → mean 2/4.
        let c = Tensor::from_slice(&[0.0f32, 1.0, 0.0, 0.0, 0.0, 0.0]).view([1, 1, 2, 3]);
        let v = tv_change(&c).double_value(&[]);
        assert!((v - (1.0 / 3.0 + 0.5)).abs() < 1e-6, "{v}");
        // A constant change (a uniform colour shift) costs nothing; speckle costs more than a
        // smooth ramp of the same range.
        let flat = Tensor::full([2, 3, 8, 8], 0.7, (Kind::Float, Device::Cpu));
        assert_eq!(tv_change(&flat).double_value(&[]), 0.0);
        let ramp = Tensor::arange(8, (Kind::Float, Device::Cpu)).view([1, 1, 1, 8]) / 7.0;
        let ramp = ramp.expand([1, 1, 8, 8], false);
        let checker = (Tensor::arange(64, (Kind::Float, Device::Cpu)).view([1, 1, 8, 8])
            + Tensor::arange(8, (Kind::Float, Device::Cpu)).view([1, 1, 8, 1]))
        .remainder(2.0);
        assert!(tv_change(&checker).double_value(&[]) > 5.0 * tv_change(&ramp).double_value(&[]));
    }

    #[test]
    fn gan_losses_match_their_probability_forms() {
        let l = Tensor::from_slice(&[-2.0f32, 0.5, 3.0]);
        let p = l.sigmoid();
        let d = eq3_discriminator_loss(&l, &l).double_value(&[]);
        let want =
            (-(p.log()).mean(Kind::Float) - (1f64 - &p).log().mean(Kind::Float)).double_value(&[]);
        assert!((d - want).abs() < 1e-5, "{d} vs {want}");
        let ns = eq3_generator_loss(&l, GanLoss::NonSaturating).double_value(&[]);
        assert!((ns + p.log().mean(Kind::Float).double_value(&[])).abs() < 1e-5);
        let sat = eq3_generator_loss(&l, GanLoss::Saturating).double_value(&[]);
        assert!((sat - (1f64 - &p).log().mean(Kind::Float).double_value(&[])).abs() < 1e-5);
        // Stable where the probability form overflows.
        let big = Tensor::from_slice(&[200.0f32]);
        assert!(
            eq3_discriminator_loss(&(-&big), &big)
                .double_value(&[])
                .is_finite()
        );
        let y = Tensor::from_slice(&[1.0f32, 0.0, 1.0]);
        let want9 = (&y - &p).square().mean(Kind::Float).double_value(&[]);
        assert!((eq9_discriminator_pretrain_loss(&l, &y).double_value(&[]) - want9).abs() < 1e-7);
        assert_eq!(
            serde_json::to_string(&GanLoss::NonSaturating).unwrap(),
            "\"non_saturating\""
        );
    }
}
