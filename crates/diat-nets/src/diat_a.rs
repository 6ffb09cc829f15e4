//! One DIAT-A training iteration — paper Algorithm 1, lines 5–11, with the objective of Eq. (14)
//! (§4.2) and `dstep = tstep = 1` — plus [`FlatAdam`], the Adam update it uses by default.
//!
//! The iteration (mirrored by `scripts/bench/bench_nets.py`):
//! 1. `T(x)` in training mode (batch statistics), once;
//! 2. D step: D on `[a; T(x).detach()]` in one pass, [`eq3_discriminator_loss`], Adam step of D;
//! 3. T step with D's parameters frozen (no weight gradients computed for D): D on `[T(x); x]` in
//!    one pass gives the GAN logits and the conv-4/conv-5 features of the adaptive identity loss,
//!    [`eq14_diat_a_objective`], Adam step of T.
//!
//! §4.2 lowers the learning rate of both networks to 1e-5 for DIAT-A.

use crate::autocast::Precision;
use crate::discriminator::Discriminator;
use crate::error::{NetsError, Result};
use crate::layers::to_channels_last;
use crate::losses::{DiatALossConfig, eq3_discriminator_loss, eq14_diat_a_objective};
use crate::transform::TransformNet;
use tch::{Kind, Tensor, nn, nn::ModuleT, nn::OptimizerConfig};

/// The learning rate of DIAT-A (§4.2).
pub const DIAT_A_LEARNING_RATE: f64 = 1e-5;

/// Something that updates a var store from its gradients.
pub trait StepOptimizer {
    /// Forgets the gradients (sets them to none, so the next backward pass writes, not adds).
    fn zero_grad(&mut self);
    /// Applies one update.
    fn step(&mut self);
}

impl StepOptimizer for nn::Optimizer {
    fn zero_grad(&mut self) {
        nn::Optimizer::zero_grad(self)
    }
    fn step(&mut self) {
        nn::Optimizer::step(self)
    }
}

/// Adam (Kingma & Ba; PyTorch's defaults β = (0.9, 0.999), ε = 1e-8, no weight decay) over all
/// trainable variables of a var store at once: [`FlatAdam::new`] moves the variables into one
/// contiguous buffer (each variable becomes a view of it), so an update is a handful of kernels
/// on that buffer instead of several per parameter tensor (libtorch's C++ Adam, which tch wraps,
/// loops over the tensors: hundreds of small kernel launches per step on a GPU).
/// The arithmetic is exactly PyTorch's single-tensor Adam.
pub struct FlatAdam {
    params: Vec<Tensor>,
    flat: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    steps: i32,
    lr: f64,
    betas: (f64, f64),
    eps: f64,
    /// Used only for `zero_grad`, which in libtorch sets gradients to none without a kernel.
    clearer: nn::Optimizer,
}

impl std::fmt::Debug for FlatAdam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlatAdam")
            .field("tensors", &self.params.len())
            .field("numel", &self.flat.numel())
            .field("steps", &self.steps)
            .field("lr", &self.lr)
            .finish()
    }
}

impl FlatAdam {
    /// Flattens the trainable variables of `vs` (all of one kind and device) into one buffer and
    /// prepares Adam with learning rate `lr`.
    pub fn new(vs: &nn::VarStore, lr: f64) -> Result<Self> {
        let params = vs.trainable_variables();
        let Some(first) = params.first() else {
            return Err(NetsError::Config(
                "FlatAdam: the var store has no trainable variable".into(),
            ));
        };
        let (kind, device) = (first.kind(), first.device());
        if params
            .iter()
            .any(|p| p.kind() != kind || p.device() != device)
        {
            return Err(NetsError::Config(
                "FlatAdam: variables of several kinds or devices".into(),
            ));
        }
        let total: i64 = params.iter().map(|p| p.numel() as i64).sum();
        let flat = Tensor::zeros([total], (kind, device));
        let mut offset = 0;
        tch::no_grad(|| {
            for p in &params {
                let n = p.numel() as i64;
                let view = flat.narrow(0, offset, n).view(p.size().as_slice());
                view.shallow_clone().copy_(p);
                // Every shallow clone (the var store's, the layers') shares this TensorImpl.
                p.shallow_clone().set_data(&view);
                offset += n;
            }
        });
        let clearer = nn::Sgd::default().build(vs, 0.0)?;
        Ok(Self {
            params,
            exp_avg: flat.zeros_like(),
            exp_avg_sq: flat.zeros_like(),
            flat,
            steps: 0,
            lr,
            betas: (0.9, 0.999),
            eps: 1e-8,
            clearer,
        })
    }

    /// Changes the learning rate.
    pub fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// The optimizer state to checkpoint: `exp_avg`, `exp_avg_sq` (flat, in variable order) and
    /// `step` (a one-element int64 tensor).
    pub fn state(&self) -> Vec<(String, Tensor)> {
        vec![
            ("exp_avg".into(), self.exp_avg.to_device(tch::Device::Cpu)),
            (
                "exp_avg_sq".into(),
                self.exp_avg_sq.to_device(tch::Device::Cpu),
            ),
            ("step".into(), Tensor::from_slice(&[self.steps as i64])),
        ]
    }

    /// Restores a state saved by [`Self::state`] for the same var store layout.
    pub fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        let get = |name: &str| {
            state
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t)
                .ok_or_else(|| NetsError::Config(format!("FlatAdam state: missing {name}")))
        };
        let (m, v, step) = (get("exp_avg")?, get("exp_avg_sq")?, get("step")?);
        if m.size() != self.exp_avg.size() || v.size() != self.exp_avg_sq.size() {
            return Err(NetsError::Config(format!(
                "FlatAdam state of {:?} values for {:?} parameters",
                m.size(),
                self.exp_avg.size()
            )));
        }
        tch::no_grad(|| {
            self.exp_avg.copy_(m);
            self.exp_avg_sq.copy_(v);
        });
        self.steps = step.int64_value(&[0]) as i32;
        Ok(())
    }
}

impl StepOptimizer for FlatAdam {
    fn zero_grad(&mut self) {
        self.clearer.zero_grad();
    }

    fn step(&mut self) {
        tch::no_grad(|| {
            let grads: Vec<Tensor> = self
                .params
                .iter()
                .map(|p| {
                    let g = p.grad();
                    if g.defined() {
                        g.reshape([-1])
                    } else {
                        p.zeros_like().reshape([-1])
                    }
                })
                .collect();
            let g = Tensor::cat(&grads, 0);
            self.steps += 1;
            let (b1, b2) = self.betas;
            let _ = self.exp_avg.lerp_(&g, 1.0 - b1);
            let _ = self.exp_avg_sq.g_mul_scalar_(b2);
            let _ = self.exp_avg_sq.g_add_(&(g.square() * (1.0 - b2)));
            let bias1 = 1.0 - b1.powi(self.steps);
            let bias2 = 1.0 - b2.powi(self.steps);
            let denom = (self.exp_avg_sq.sqrt() / bias2.sqrt()) + self.eps;
            let update = (&self.exp_avg / denom) * (self.lr / bias1);
            let _ = self.flat.g_sub_(&update);
        });
    }
}

/// The detached loss values of one iteration (reading them synchronises the device).
#[derive(Debug)]
pub struct StepLosses {
    /// D's loss (Eq. 3, D's side).
    pub d: Tensor,
    /// T's objective (Eq. 14).
    pub t: Tensor,
    /// T's GAN term.
    pub gan: Tensor,
    /// The adaptive identity loss (Eq. 13), before λ.
    pub identity: Tensor,
}

/// One DIAT-A iteration on input images `x` and guided-set images `a` (see the module
/// documentation). `d_vs` is D's var store (frozen during T's step, then unfrozen). With
/// `channels_last` the images are laid out NHWC first (faster cuDNN and oneDNN kernels); with
/// [`Precision::Bf16`] the forward passes and losses run under autocast (backward passes outside,
/// weights and optimizer state fp32), as `torch.autocast` does.
#[allow(clippy::too_many_arguments)]
pub fn diat_a_step(
    t: &TransformNet,
    d: &Discriminator,
    d_vs: &mut nn::VarStore,
    opt_t: &mut impl StepOptimizer,
    opt_d: &mut impl StepOptimizer,
    x: &Tensor,
    a: &Tensor,
    cfg: &DiatALossConfig,
    channels_last: bool,
    precision: Precision,
) -> StepLosses {
    let (x, a) = if channels_last {
        (to_channels_last(x), to_channels_last(a))
    } else {
        (x.shallow_clone(), a.shallow_clone())
    };
    let device = x.device();
    let (tx, d_loss) = precision.run(device, || {
        let tx = t.forward_t(&x, true);
        let na = a.size()[0];
        let out = d.forward(&Tensor::cat(&[&a, &tx.detach().to_kind(a.kind())], 0));
        let d_loss = eq3_discriminator_loss(
            &out.logits.narrow(0, 0, na),
            &out.logits.narrow(0, na, tx.size()[0]),
        );
        (tx, d_loss)
    });
    opt_d.zero_grad();
    d_loss.backward();
    opt_d.step();

    d_vs.freeze();
    let terms = precision.run(device, || eq14_diat_a_objective(&tx, &x, d, cfg));
    opt_t.zero_grad();
    terms.total.backward();
    opt_t.step();
    d_vs.unfreeze();
    StepLosses {
        d: d_loss.detach(),
        t: terms.total.detach(),
        gan: terms.gan.detach(),
        identity: terms
            .identity
            .as_ref()
            .expect("Eq. (14) has an identity term")
            .detach()
            .to_kind(Kind::Float),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discriminator::{DiscriminatorConfig, discriminator};
    use crate::transform::{TransformConfig, transform_net};
    use tch::Device;

    #[test]
    fn flat_adam_matches_libtorch_adam() {
        // D, not T: the biases of T's convolutions feeding batch normalisation have a zero true
        // gradient, and Adam turns their rounding noise into ±lr steps.
        tch::manual_seed(11);
        let cfg = DiscriminatorConfig::tiny(16);
        let (va, vb) = (
            nn::VarStore::new(Device::Cpu),
            nn::VarStore::new(Device::Cpu),
        );
        let (da, db) = (
            discriminator(&va.root(), &cfg),
            discriminator(&vb.root(), &cfg),
        );
        tch::no_grad(|| {
            let src = va.variables();
            for (name, mut t) in vb.variables() {
                t.copy_(&src[&name]);
            }
        });
        let before = va.variables()["conv.0.weight"].copy();
        let mut opt_a = nn::Adam::default().build(&va, 1e-3).unwrap();
        let mut opt_b = FlatAdam::new(&vb, 1e-3).unwrap();
        let x = Tensor::rand([4, 3, 16, 16], (Kind::Float, Device::Cpu));
        let y = Tensor::from_slice(&[1f32, 0., 1., 0.]);
        for _ in 0..3 {
            let la = crate::losses::eq9_discriminator_pretrain_loss(&da.logits(&x), &y);
            StepOptimizer::zero_grad(&mut opt_a);
            la.backward();
            StepOptimizer::step(&mut opt_a);
            let lb = crate::losses::eq9_discriminator_pretrain_loss(&db.logits(&x), &y);
            opt_b.zero_grad();
            lb.backward();
            opt_b.step();
        }
        // Three steps of lr 1e-3 move the weights by up to 3e-3; the two implementations agree to
        // rounding (they order the floating-point operations differently).
        let (sa, sb) = (va.variables(), vb.variables());
        let moved = (&sa["conv.0.weight"] - &before)
            .abs()
            .max()
            .double_value(&[]);
        assert!(moved > 2e-3, "Adam moved the weights by {moved}");
        for (name, t) in &sa {
            let diff = (t - &sb[name]).abs().max().double_value(&[]);
            assert!(diff < 1e-6, "{name}: {diff}");
        }
        // The var store's tensors are views of the flat buffer now.
        let start = opt_b.flat.data_ptr() as usize;
        let end = start + opt_b.flat.numel() * 4;
        for t in vb.trainable_variables() {
            assert!((start..end).contains(&(t.data_ptr() as usize)));
        }
    }

    #[test]
    fn a_step_updates_both_networks_and_leaves_d_trainable() {
        tch::manual_seed(5);
        let (tvs, mut dvs) = (
            nn::VarStore::new(Device::Cpu),
            nn::VarStore::new(Device::Cpu),
        );
        let t = transform_net(&tvs.root(), &TransformConfig::tiny(16));
        let d = discriminator(&dvs.root(), &DiscriminatorConfig::tiny(16));
        let mut opt_t = FlatAdam::new(&tvs, 1e-3).unwrap();
        let mut opt_d = FlatAdam::new(&dvs, 1e-3).unwrap();
        let before_t = tvs.variables()["out.weight"].copy();
        let before_d = dvs.variables()["fc2.weight"].copy();
        let x = Tensor::rand([2, 3, 16, 16], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
        let a = Tensor::rand([2, 3, 16, 16], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
        let l = diat_a_step(
            &t,
            &d,
            &mut dvs,
            &mut opt_t,
            &mut opt_d,
            &x,
            &a,
            &DiatALossConfig::default(),
            true,
            Precision::Fp32,
        );
        assert!(l.d.double_value(&[]).is_finite() && l.t.double_value(&[]).is_finite());
        assert!(!tvs.variables()["out.weight"].equal(&before_t));
        assert!(!dvs.variables()["fc2.weight"].equal(&before_d));
        assert!(dvs.trainable_variables().iter().all(|v| v.requires_grad()));
    }

    #[test]
    fn a_bf16_step_keeps_fp32_state_and_stays_close_to_fp32() {
        // Both runs start from the same weights and data (copied, not re-drawn: tests share
        // libtorch's global generator across threads).
        let (tvs0, dvs0) = (
            nn::VarStore::new(Device::Cpu),
            nn::VarStore::new(Device::Cpu),
        );
        let _ = transform_net(&tvs0.root(), &TransformConfig::tiny(16));
        let _ = discriminator(&dvs0.root(), &DiscriminatorConfig::tiny(16));
        let x = Tensor::rand([4, 3, 16, 16], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
        let a = Tensor::rand([4, 3, 16, 16], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
        let run = |precision: Precision| {
            let (mut tvs, mut dvs) = (
                nn::VarStore::new(Device::Cpu),
                nn::VarStore::new(Device::Cpu),
            );
            let t = transform_net(&tvs.root(), &TransformConfig::tiny(16));
            let d = discriminator(&dvs.root(), &DiscriminatorConfig::tiny(16));
            tvs.copy(&tvs0).unwrap();
            dvs.copy(&dvs0).unwrap();
            let mut opt_t = FlatAdam::new(&tvs, 1e-3).unwrap();
            let mut opt_d = FlatAdam::new(&dvs, 1e-3).unwrap();
            let cfg = DiatALossConfig::default();
            let l = diat_a_step(
                &t, &d, &mut dvs, &mut opt_t, &mut opt_d, &x, &a, &cfg, true, precision,
            );
            // (BatchNorm's step counters are integers.)
            let kinds_fp32 = tvs
                .variables()
                .values()
                .chain(dvs.variables().values())
                .all(|v| matches!(v.kind(), Kind::Float | Kind::Int64));
            assert!(kinds_fp32, "weights stay fp32 under {precision:?}");
            (
                l.d.double_value(&[]),
                l.t.double_value(&[]),
                tvs.variables()["out.weight"].copy(),
            )
        };
        let (d32, t32, w32) = run(Precision::Fp32);
        let (d16, t16, w16) = run(Precision::Bf16);
        assert!(
            (d32 - d16).abs() < 0.01 * d32.abs().max(1.0),
            "{d32} vs {d16}"
        );
        // T's objective holds Eq. (13)'s identity term: a distance between D's features of T(x)
        // and of x, each rounded to bf16, so its relative error is larger than the GAN term's.
        assert!(
            (t32 - t16).abs() < 0.15 * t32.abs().max(1.0),
            "{t32} vs {t16}"
        );
        // Both took an Adam step of about lr from the same start.
        let moved = (&w32 - &w16).abs().max().double_value(&[]);
        assert!(moved < 2.5e-3, "{moved}");
    }
}
