//! An exponential moving average of a network's weights (generator averaging; not in the paper,
//! which takes T as it is after the last iteration of Algorithm 1). GAN generators wander between
//! iterations; averaging their weights over the last ~1/(1 − β) steps (Karras et al.,
//! *Progressive Growing of GANs*, ICLR 2018, §A.1; Yazıcı et al., *The Unusual Effectiveness of
//! Averaging in GAN Training*, ICLR 2019) gives a model that depends less on which step a run
//! stopped at. `stages.adversarial.ema` turns it on for T.

use crate::{Result, TrainError};
use tch::{Kind, Tensor, nn};

/// The averaged copy `avg` of a live network: floating-point trainable weights follow
/// `avg ← β·avg + (1 − β)·live` at each [`WeightEma::update`]; everything else (BatchNorm's
/// running statistics and step counter) is copied, as StyleGAN does with buffers.
pub struct WeightEma {
    beta: f64,
    pairs: Vec<(Tensor, Tensor, bool)>,
}

impl std::fmt::Debug for WeightEma {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "WeightEma(β = {}, {} tensors)",
            self.beta,
            self.pairs.len()
        )
    }
}

/// A new store holding a copy of every variable of `live` under the same name, made without
/// building the network again: no random initialisation is drawn, so turning averaging on leaves
/// the random stream — and with it the live network's training — exactly as it was.
pub fn copy_store(live: &nn::VarStore) -> nn::VarStore {
    let vs = nn::VarStore::new(live.device());
    let mut vars: Vec<(String, Tensor)> = live.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, t) in vars {
        let mut segs: Vec<&str> = name.split('.').collect();
        let last = segs.pop().unwrap_or_default();
        let p = segs.into_iter().fold(vs.root(), |p, s| p / s);
        let _ = p.add(last, tch::no_grad(|| t.detach().copy()), false);
    }
    vs
}

/// Runs `f` with `avg`'s values in `live`'s variables (e.g. to render samples of the average
/// with the live network's module), then puts the live values back.
pub fn with_weights_of<R>(live: &nn::VarStore, avg: &nn::VarStore, f: impl FnOnce() -> R) -> R {
    let (l, a) = (live.variables(), avg.variables());
    let saved: Vec<(Tensor, Tensor)> = tch::no_grad(|| {
        l.iter()
            .filter_map(|(name, lt)| {
                let at = a.get(name)?;
                let keep = lt.copy();
                lt.shallow_clone().copy_(at);
                Some((lt.shallow_clone(), keep))
            })
            .collect()
    });
    let r = f();
    tch::no_grad(|| {
        for (mut lt, keep) in saved {
            lt.copy_(&keep);
        }
    });
    r
}

impl WeightEma {
    /// Pairs the variables of `avg` and `live` by name (the same architecture and configuration,
    /// else a configuration error naming the first mismatch).
    pub fn new(avg: &nn::VarStore, live: &nn::VarStore, beta: f64) -> Result<Self> {
        if !(0.0..1.0).contains(&beta) {
            return Err(TrainError::Config(format!(
                "EMA decay {beta} is outside [0, 1)"
            )));
        }
        let (a, l) = (avg.variables(), live.variables());
        let mut names: Vec<&String> = l.keys().collect();
        names.sort();
        let mut pairs = Vec::with_capacity(names.len());
        for name in names {
            let lt = &l[name];
            let at = a.get(name).ok_or_else(|| {
                TrainError::Config(format!("EMA: the averaged network has no variable {name}"))
            })?;
            if at.size() != lt.size() {
                return Err(TrainError::Config(format!(
                    "EMA: {name} is {:?} in the averaged network and {:?} in the live one",
                    at.size(),
                    lt.size()
                )));
            }
            let average = lt.requires_grad() && matches!(lt.kind(), Kind::Float | Kind::Double);
            pairs.push((at.shallow_clone(), lt.shallow_clone(), average));
        }
        if a.len() != pairs.len() {
            return Err(TrainError::Config(format!(
                "EMA: the averaged network has {} variables, the live one {}",
                a.len(),
                pairs.len()
            )));
        }
        Ok(Self { beta, pairs })
    }

    /// Sets the average to the live weights (the start of averaging).
    pub fn reset(&mut self) {
        tch::no_grad(|| {
            for (a, l, _) in &mut self.pairs {
                a.copy_(l);
            }
        });
    }

    /// One averaging step, after an optimizer step of the live network.
    pub fn update(&mut self) {
        let w = 1.0 - self.beta;
        tch::no_grad(|| {
            for (a, l, average) in &mut self.pairs {
                if *average {
                    let _ = a.lerp_(l, w);
                } else {
                    a.copy_(l);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, nn::Module};

    fn net(vs: &nn::VarStore) -> (nn::Linear, diat_nets::layers::BatchNorm2d) {
        (
            nn::linear(vs.root() / "fc", 3, 2, Default::default()),
            diat_nets::layers::batch_norm2d(&(vs.root() / "bn"), 2),
        )
    }

    #[test]
    fn follows_the_recurrence_and_copies_buffers() {
        let live = nn::VarStore::new(Device::Cpu);
        let (fc, bn) = net(&live);
        // (That the copy draws no random numbers — a run with averaging trains T exactly as one
        // without — is checked end to end in tests/train_cli.rs: the global generator is shared
        // by the tests running in parallel here.)
        let avg = copy_store(&live);
        assert_eq!(avg.variables().len(), live.variables().len());
        assert!(avg.trainable_variables().is_empty());
        let mut ema = WeightEma::new(&avg, &live, 0.9).unwrap();
        assert!(avg.variables()["fc.weight"].equal(&fc.ws));
        let w0 = fc.ws.copy();
        // Move the live weights and the BatchNorm statistics, then average once.
        tch::no_grad(|| {
            let _ = fc.ws.shallow_clone().g_add_scalar_(1.0);
            let _ = bn.bn.running_mean.shallow_clone().g_add_scalar_(0.5);
        });
        let _ = bn.num_batches_tracked.shallow_clone().g_add_scalar_(3);
        ema.update();
        let a = avg.variables();
        let expect = &w0 + 0.1;
        assert!(a["fc.weight"].allclose(&expect, 1e-6, 1e-6, false));
        // Buffers are copied, not averaged.
        assert_eq!(a["bn.running_mean"].double_value(&[0]), 0.5);
        assert_eq!(a["bn.num_batches_tracked"].int64_value(&[]), 3);
        // The average lags the live weights (w0 + 1).
        assert!(!a["fc.weight"].allclose(&fc.ws, 1e-6, 1e-6, false));
        // Inside `with_weights_of` the live module computes with the average; after it, with its own.
        let x = Tensor::ones([1, 3], (Kind::Float, Device::Cpu));
        let live_y = fc.forward(&x);
        let avg_y = with_weights_of(&live, &avg, || fc.forward(&x));
        let by_hand = x.matmul(&a["fc.weight"].tr()) + &a["fc.bias"];
        assert!(avg_y.allclose(&by_hand, 1e-6, 1e-6, false));
        assert!(fc.forward(&x).equal(&live_y));
        ema.reset();
        assert!(a["fc.weight"].equal(&fc.ws));
    }

    #[test]
    fn refuses_mismatched_networks_and_bad_decay() {
        let (live, avg) = (
            nn::VarStore::new(Device::Cpu),
            nn::VarStore::new(Device::Cpu),
        );
        let _ = net(&live);
        let _ = nn::linear(avg.root() / "fc", 3, 2, Default::default());
        let e = WeightEma::new(&avg, &live, 0.9).unwrap_err().to_string();
        assert!(e.contains("no variable bn."), "{e}");
        let e = WeightEma::new(&live, &live, 1.0).unwrap_err().to_string();
        assert!(e.contains("outside [0, 1)"), "{e}");
    }
}
