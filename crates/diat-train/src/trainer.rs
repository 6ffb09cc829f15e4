//! The paper's whole training for one task — Algorithm 1 and §3.2 — as resumable stages:
//!
//! | stage | what | paper |
//! |---|---|---|
//! | `reconstruct` | g on all kept images (DIAT with the regularizer) | Eq. (4) |
//! | `denoise` | f separating g's artifacts | Eq. (5) |
//! | `pretrain_t` | T as an auto-encoder on all kept images | Eq. (8), Alg. 1 step 2 |
//! | `pretrain_d` | D on attribute labels | Eq. (9), Alg. 1 step 3 |
//! | `adversarial` | dstep D updates, then tstep T updates | Eq. (7) / (14), Alg. 1 steps 4–12 |
//! | `enhance` | local (masked, Eq. 10) or global (deblurring, Eq. 11) enhancement | §3.2 |
//!
//! Every stage goes through one runner ([`run_stage`]) that resumes from the stage's last
//! checkpoint, logs metrics, writes samples and checkpoints, stops on a non-finite loss or a
//! signal, and saves the stage's networks; every DIAT variant goes through one GAN step
//! ([`gan_iteration`]) whose identity and regularization terms follow the variant.

use crate::config::{Enhancement, Features, LrSchedule, PipelineConfig};
use crate::data::{Batch, Prefetcher, RawBatch, Source, batch_flips, batch_indices};
use crate::ema::{self, WeightEma};
use crate::error::{Result, TrainError};
use crate::images;
use crate::run::{CheckpointState, RunDir};
use diat_common::{Progress, StagedDir};
use diat_nets::augment::{Augmentation, Policy, diff_augment};
use diat_nets::autocast::Precision;
use diat_nets::checkpoint;
use diat_nets::diat_a::{FlatAdam, StepOptimizer};
use diat_nets::losses::{self, IDENTITY_LAYERS};
use diat_nets::{DenoiseConfig, DenoiseNet, Discriminator, LocalEnhanceNet, TransformNet, VggFace};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tch::{Device, Kind, Tensor, nn, nn::Module, nn::ModuleT};

/// A trainable network of a stage: its var store, optimizer and checkpoint identity.
pub struct Net {
    pub name: &'static str,
    pub arch: &'static str,
    pub config: Value,
    pub vs: nn::VarStore,
    pub opt: Option<FlatAdam>,
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Net({}, {})", self.name, self.arch)
    }
}

impl Net {
    fn save(&self, dir: &Path, with_opt: bool) -> Result<()> {
        checkpoint::save(
            &self.vs,
            &dir.join(format!("{}.safetensors", self.name)),
            self.arch,
            &self.config,
        )?;
        if let (true, Some(opt)) = (with_opt, &self.opt) {
            let meta = checkpoint::CheckpointMeta::new("adam", &json!({ "for": self.name }))?;
            checkpoint::save_tensors(
                &dir.join(format!("opt_{}.safetensors", self.name)),
                &opt.state(),
                &meta,
            )?;
        }
        Ok(())
    }
    fn load(&mut self, dir: &Path, with_opt: bool) -> Result<()> {
        checkpoint::load(
            &self.vs,
            &dir.join(format!("{}.safetensors", self.name)),
            Some(self.arch),
        )?;
        if let (true, Some(opt)) = (with_opt, &mut self.opt) {
            let (state, _) =
                checkpoint::read_tensors(&dir.join(format!("opt_{}.safetensors", self.name)))?;
            opt.load_state(&state)?;
        }
        Ok(())
    }
}

/// One optimizer step of `net` on `loss` (gradients reset first).
fn descend(net: &mut Net, loss: &Tensor) {
    let opt = net
        .opt
        .as_mut()
        .expect("a trained network has an optimizer");
    opt.zero_grad();
    loss.backward();
    opt.step();
}

/// What one step reports: loss tensors (read only at log/checkpoint steps, to avoid device
/// syncs) and plain numbers.
#[derive(Debug, Default)]
pub struct StepOut {
    pub losses: Vec<(&'static str, Tensor)>,
    pub extra: Vec<(&'static str, f64)>,
}

/// Everything a stage needs from its run.
pub struct Ctx<'a> {
    pub cfg: &'a PipelineConfig,
    pub run: RunDir,
    pub device: Device,
    /// Batches (and so activations) channels-last: `train.memory_format` on this device.
    pub channels_last: bool,
    /// `train.precision` on this device: the forward passes and losses of every stage run in it
    /// (backward passes, weights and optimizer state stay fp32).
    pub precision: Precision,
    pub stop: Arc<AtomicBool>,
    pub progress: diat_common::progress::Mode,
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ctx({})", self.run.root.display())
    }
}

fn read_losses(losses: &[(&'static str, Tensor)]) -> Vec<(&'static str, f64)> {
    losses
        .iter()
        .map(|(n, t)| (*n, t.double_value(&[])))
        .collect()
}

/// Fault injection for tests of the divergence path: `DIAT_FAULT_NONFINITE=<stage>:<step>`
/// makes the first logged loss of that step NaN (a real divergence needs a configuration the
/// limits refuse, e.g. a learning rate of 1e30).
fn injected_nonfinite(stage: &str, step: u64) -> bool {
    std::env::var("DIAT_FAULT_NONFINITE")
        .ok()
        .and_then(|v| {
            let (s, n) = v.split_once(':')?;
            Some(s == stage && n.parse::<u64>().ok()? == step)
        })
        .unwrap_or(false)
}

fn check_finite(stage: &str, step: u64, vals: &[(&'static str, f64)]) -> Result<()> {
    match vals.iter().find(|(_, v)| !v.is_finite()) {
        Some((n, v)) => Err(TrainError::NonFinite {
            stage: stage.into(),
            step,
            name: n.to_string(),
            value: *v,
        }),
        None => Ok(()),
    }
}

/// The one stage runner. `make_step(start)` builds the step function once the resume point is
/// known; `sample` renders the rows of a sample grid.
pub fn run_stage<F, S>(
    ctx: &Ctx<'_>,
    stage: &str,
    steps: u64,
    images_per_step: u64,
    nets: &mut [Net],
    make_step: impl FnOnce(u64) -> F,
    sample: S,
) -> Result<()>
where
    F: FnMut(&mut [Net], u64) -> Result<StepOut>,
    S: Fn(&[Net]) -> Result<Vec<Tensor>>,
{
    let t = &ctx.cfg.train;
    let mut start = 0;
    if let Some((s, dir)) = ctx.run.checkpoints(stage).pop() {
        for n in nets.iter_mut() {
            n.load(&dir, true)?;
        }
        tracing::info!("{stage}: resuming after step {s} from {}", dir.display());
        start = s;
    }
    // Lines a killed run logged after its last checkpoint (or before its first) are recomputed.
    ctx.run.truncate_metrics(stage, start)?;
    let mut step_fn = make_step(start);
    let progress = Progress::with_mode(stage.to_string(), Some(steps), ctx.progress);
    progress.inc(start);
    let mut window = (Instant::now(), 0u64);
    let mut last = StepOut::default();
    for step in start..steps {
        last = step_fn(nets, step)?;
        let done = step + 1;
        window.1 += images_per_step;
        let stop = ctx.stop.load(Ordering::SeqCst);
        let log = done % t.log_every.max(1) == 0 || done == steps;
        let ckpt = done % t.checkpoint_every == 0 || done == steps || stop;
        if log || ckpt {
            let mut vals = read_losses(&last.losses);
            if injected_nonfinite(stage, done)
                && let Some(v) = vals.first_mut()
            {
                v.1 = f64::NAN;
            }
            check_finite(stage, done, &vals)?;
            if log {
                let secs = window.0.elapsed().as_secs_f64().max(1e-9);
                let mut line = serde_json::Map::new();
                line.insert("stage".into(), stage.into());
                line.insert("step".into(), done.into());
                for (n, v) in &vals {
                    line.insert(format!("loss_{n}"), (*v).into());
                }
                for (n, v) in &last.extra {
                    line.insert((*n).into(), (*v).into());
                }
                // img/s counts every image the step reads (the adversarial stage: dstep + tstep
                // input batches and dstep guided ones); step_per_s × batch is the input-image rate
                // `diat bench nets` reports for a DIAT-A step.
                line.insert("img_per_s".into(), (window.1 as f64 / secs).into());
                line.insert(
                    "step_per_s".into(),
                    ((window.1 / images_per_step.max(1)) as f64 / secs).into(),
                );
                ctx.run.log_metrics(&Value::Object(line))?;
                progress.set_message(
                    vals.iter()
                        .map(|(n, v)| format!("{n} {v:.4}"))
                        .chain([format!("{:.0} img/s", window.1 as f64 / secs)])
                        .collect::<Vec<_>>()
                        .join(" · "),
                );
                window = (Instant::now(), 0);
            }
            if ckpt {
                let state = CheckpointState {
                    stage: stage.into(),
                    step: done,
                    seed: t.seed,
                    data_cursor: done,
                    torch_seed: t.seed as i64,
                    losses: vals
                        .iter()
                        .map(|(n, v)| (n.to_string(), json!(v)))
                        .collect(),
                };
                ctx.run
                    .write_checkpoint(&state, t.keep_checkpoints, |dir| {
                        nets.iter().try_for_each(|n| n.save(dir, true))
                    })?;
            }
        }
        if t.sample_every > 0 && (done % t.sample_every == 0 || done == steps) {
            let rows = tch::no_grad(|| sample(nets))?;
            if !rows.is_empty() {
                let refs: Vec<&Tensor> = rows.iter().collect();
                images::save_png(
                    &images::grid(&refs),
                    &ctx.run
                        .root
                        .join("samples")
                        .join(format!("{stage}-step-{done:08}.png")),
                )?;
            }
        }
        progress.inc(1);
        if stop {
            progress.finish();
            return Err(TrainError::Interrupted {
                stage: stage.into(),
                step: done,
            });
        }
    }
    progress.finish();
    let _ = last;
    let sdir = ctx.run.stage_dir(stage);
    std::fs::create_dir_all(&sdir).map_err(|e| TrainError::io(&sdir, e))?;
    for n in nets.iter() {
        n.save(&sdir, false)?;
    }
    let done = json!({ "stage": stage, "steps": steps });
    diat_common::write_atomic(&sdir.join("done.json"), done.to_string().as_bytes())
        .map_err(|e| TrainError::io(&sdir, e))?;
    images::save_png(
        &images::loss_curves(&ctx.run.metrics()),
        &ctx.run.root.join("loss_curve.png"),
    )?;
    Ok(())
}

/// The prepared sets of a task.
pub struct TaskData {
    pub pretrain: Source,
    pub guided: Source,
    pub input: Source,
    pub test: Option<Source>,
    pub attribute: String,
    pub guided_value: bool,
}

impl TaskData {
    pub fn open(data: &Path, task: &str, size: i64) -> Result<Self> {
        let tdir = data.join("tasks").join(task);
        let guided = Source::open(&tdir.join("guided"))?;
        let details = &guided.store.manifest.details;
        let attribute = details["task"]["attribute"]
            .as_str()
            .ok_or_else(|| {
                TrainError::Config(format!(
                    "{}: manifest names no task attribute",
                    tdir.display()
                ))
            })?
            .to_string();
        let guided_value = details["task"]["guided_value"].as_bool().unwrap_or(true);
        let pretrain =
            Source::open(&data.join("pretrain"))?.with_labels(&attribute, guided_value)?;
        let input = Source::open(&tdir.join("input"))?;
        let test = tdir
            .join("test")
            .join("manifest.json")
            .exists()
            .then(|| Source::open(&tdir.join("test")))
            .transpose()?;
        for s in [&pretrain, &guided, &input]
            .into_iter()
            .chain(test.as_ref())
        {
            if s.size() != size {
                return Err(TrainError::Config(format!(
                    "{} holds {}px images but model.image_size is {size}",
                    s.store.dir.display(),
                    s.size()
                )));
            }
        }
        Ok(Self {
            pretrain,
            guided,
            input,
            test,
            attribute,
            guided_value,
        })
    }

    /// The fixed sample batch: the first images of the test inputs (else of the input set).
    pub fn sample_batch(&self, n: i64, device: Device, channels_last: bool) -> Batch {
        let src = self.test.as_ref().unwrap_or(&self.input);
        let idx: Vec<usize> = (0..(n as usize).min(src.len())).collect();
        let mut b = RawBatch::gather(src, &idx).to_device(device, channels_last);
        if b.masks.is_none() && self.input.store.manifest.has_masks {
            b.masks = Some(
                RawBatch::gather(&self.input, &idx[..idx.len().min(self.input.len())])
                    .to_device(device, channels_last)
                    .masks
                    .expect("masked"),
            );
        }
        b
    }
}

/// Prefetched single-source batches for steps `start..end`, pinned for a CUDA `device`.
#[allow(clippy::too_many_arguments)]
fn single_loader(
    src: &Source,
    (seed, flip): (u64, bool),
    stream: u64,
    batch: i64,
    start: u64,
    end: u64,
    threads: usize,
    device: Device,
) -> Prefetcher<RawBatch> {
    let src = src.clone();
    Prefetcher::new(start, end, threads, 4, batch as u64, move |step| {
        let mut cache = BTreeMap::new();
        RawBatch::gather_mirrored(
            &src,
            &batch_indices(seed, stream, step, batch as usize, src.len(), &mut cache),
            &batch_flips(flip, seed, stream, step, batch as usize),
        )
        .pinned(device)
    })
}

/// The batches of one adversarial iteration: `dstep + tstep` input batches and `dstep` guided.
pub type AdversarialItem = (Vec<RawBatch>, Vec<RawBatch>);

/// The loader of the adversarial stage (Algorithm 1's inner loop), for iterations
/// `start..end`: iteration `i` gets input batches `i·(dstep+tstep) + j` of stream 3 and guided
/// batches `i·dstep + j` of stream 4, so a resumed run sees exactly the uninterrupted run's data.
/// Images are mirrored left–right at random where `flip` (`train.flip`, [`batch_flips`]).
/// Assembled (and pinned, for a CUDA `device`) on `threads` worker threads. `diat bench loader`
/// measures this very loader.
#[allow(clippy::too_many_arguments)]
pub fn adversarial_loader(
    input: &Source,
    guided: &Source,
    (seed, flip): (u64, bool),
    batch: usize,
    (dstep, tstep): (u64, u64),
    (start, end): (u64, u64),
    threads: usize,
    device: Device,
) -> Prefetcher<AdversarialItem> {
    let (input, guided) = (input.clone(), guided.clone());
    let images = batch as u64 * (2 * dstep + tstep);
    Prefetcher::new(start, end, threads, 4, images, move |step| {
        let (mut ci, mut cg) = (BTreeMap::new(), BTreeMap::new());
        let xs: Vec<RawBatch> = (0..dstep + tstep)
            .map(|j| {
                let at = step * (dstep + tstep) + j;
                let idx = batch_indices(seed, 3, at, batch, input.len(), &mut ci);
                RawBatch::gather_mirrored(&input, &idx, &batch_flips(flip, seed, 3, at, batch))
                    .pinned(device)
            })
            .collect();
        let aas: Vec<RawBatch> = (0..dstep)
            .map(|j| {
                let at = step * dstep + j;
                let idx = batch_indices(seed, 4, at, batch, guided.len(), &mut cg);
                RawBatch::gather_mirrored(&guided, &idx, &batch_flips(flip, seed, 4, at, batch))
                    .pinned(device)
            })
            .collect();
        (xs, aas)
    })
}

fn new_transform(
    cfg: &PipelineConfig,
    device: Device,
    name: &'static str,
    arch: &'static str,
    lr: Option<f64>,
) -> Result<(Net, TransformNet)> {
    let vs = nn::VarStore::new(device);
    let c = cfg.transform_config();
    let t = diat_nets::transform_net(&vs.root(), &c);
    let opt = lr.map(|lr| FlatAdam::new(&vs, lr)).transpose()?;
    Ok((
        Net {
            name,
            arch,
            config: serde_json::to_value(&c).unwrap_or_default(),
            vs,
            opt,
        },
        t,
    ))
}

fn new_disc(cfg: &PipelineConfig, device: Device, lr: Option<f64>) -> Result<(Net, Discriminator)> {
    let vs = nn::VarStore::new(device);
    let c = cfg.disc_config();
    let d = diat_nets::discriminator(&vs.root(), &c);
    let opt = lr.map(|lr| FlatAdam::new(&vs, lr)).transpose()?;
    Ok((
        Net {
            name: "discriminator",
            arch: "discriminator",
            config: serde_json::to_value(&c).unwrap_or_default(),
            vs,
            opt,
        },
        d,
    ))
}

fn new_denoise(cfg: &PipelineConfig, device: Device, lr: Option<f64>) -> Result<(Net, DenoiseNet)> {
    let vs = nn::VarStore::new(device);
    let c = DenoiseConfig {
        image_size: cfg.model.image_size,
        ..Default::default()
    };
    let f = diat_nets::denoise_net(&vs.root(), &c);
    let opt = lr.map(|lr| FlatAdam::new(&vs, lr)).transpose()?;
    Ok((
        Net {
            name: "denoise",
            arch: "denoise",
            config: serde_json::to_value(&c).unwrap_or_default(),
            vs,
            opt,
        },
        f,
    ))
}

/// Loads a finished stage's network into `net` and freezes it.
fn load_stage_net(ctx: &Ctx<'_>, stage: &str, net: &mut Net) -> Result<()> {
    net.load(&ctx.run.stage_dir(stage), false)?;
    net.vs.freeze();
    Ok(())
}

/// VGG-Face for the variants and losses that need it; refuses random weights outside smoke runs.
fn vgg(ctx: &Ctx<'_>, allow_random: bool) -> Result<(VggFace, nn::VarStore)> {
    let path = diat_nets::vggface::default_weights_path(&diat_common::Dirs::from_env());
    let (net, vs, loaded) = diat_nets::vggface::vgg_face_pretrained(&path, ctx.device)?;
    if !loaded && !allow_random {
        return Err(TrainError::Config(format!(
            "this pipeline needs VGG-Face weights at {} (import them with `diat nets import-vggface`), \
             or set DIAT_ALLOW_RANDOM_VGGFACE=1 for a smoke run",
            path.display()
        )));
    }
    Ok((net, vs))
}

fn allow_random_vgg() -> bool {
    std::env::var("DIAT_ALLOW_RANDOM_VGGFACE").is_ok_and(|v| v == "1")
}

/// Which identity term T's objective has (per variant).
pub enum Identity<'a> {
    /// DIAT1: attribute loss only.
    None,
    /// Eq. (2) on VGG-Face (DIAT, DIAT2, DIAT3).
    VggFace(&'a VggFace),
    /// Eq. (13) on D's own conv-4/5 features (DIAT-A, DIAT-A0).
    Adaptive,
}

/// The adversarial stage's options beyond the paper (`stages.adversarial.{r1, augment, tv}`); all
/// off by default.
#[derive(Debug, Clone, Copy, Default)]
pub struct BeyondPaper {
    /// γ of the R1 penalty on D.
    pub r1: f64,
    /// DiffAugment on everything D sees.
    pub augment: Policy,
    /// Weight of the total variation of T's change in T's objective.
    pub tv: f64,
}

/// One iteration of Algorithm 1's loop (steps 5–11) for any variant: `dstep` updates of D on
/// guided images `a` against `T(x)`, then `tstep` updates of T on
/// `GAN(T(x)) + λ ℓ_id(x) [+ γ ℓ_smooth(T(x))]`. `xs` holds dstep + tstep input batches.
#[allow(clippy::too_many_arguments)]
pub fn gan_iteration(
    t: &TransformNet,
    d: &Discriminator,
    nets: &mut [Net],
    xs: &[Tensor],
    aas: &[Tensor],
    identity: &Identity<'_>,
    smooth: Option<(&DenoiseNet, f64)>,
    lambda: f64,
    gan: losses::GanLoss,
    grad_ratio: bool,
    precision: Precision,
    beyond: &BeyondPaper,
) -> StepOut {
    let BeyondPaper { r1, augment, tv } = *beyond;
    let (t_nets, d_nets) = nets.split_at_mut(1);
    let (t_net, d_net) = (&mut t_nets[0], &mut d_nets[0]);
    let mut out = StepOut::default();
    let dstep = aas.len();
    let mut d_loss = Tensor::zeros([], (Kind::Float, xs[0].device()));
    let mut r1_term = None;
    let device = xs[0].device();
    for (x, a) in xs[..dstep].iter().zip(aas) {
        let (loss, penalty) = precision.run(device, || {
            let tx = tch::no_grad(|| t.forward_t(x, true)).to_kind(a.kind());
            let n = a.size()[0];
            // With R1 the guided images need a gradient of their own.
            let a = if r1 > 0.0 {
                a.detach().set_requires_grad(true)
            } else {
                a.shallow_clone()
            };
            // DiffAugment: D sees real and transformed images augmented alike (independent
            // draws); none without a policy.
            let logits = d.logits(&Tensor::cat(
                &[&diff_augment(augment, &a), &diff_augment(augment, &tx)],
                0,
            ));
            let real = logits.narrow(0, 0, n);
            let loss = losses::eq3_discriminator_loss(&real, &logits.narrow(0, n, tx.size()[0]));
            let penalty = (r1 > 0.0).then(|| losses::r1_penalty(&real, &a));
            (loss, penalty)
        });
        let opt = d_net.opt.as_mut().expect("D trains");
        opt.zero_grad();
        match &penalty {
            Some(p) => (&loss + p * r1).backward(),
            None => loss.backward(),
        }
        opt.step();
        // Logged: Eq. (3)'s D loss and the penalty apart.
        d_loss = loss;
        r1_term = penalty;
    }
    d_net.vs.freeze();
    let mut last = None;
    for x in &xs[dstep..] {
        // T's objective is exactly the paper's equation the parity tests check: Eq. (14) for
        // DIAT-A, Eq. (7) (with or without its identity and smoothness terms) for DIAT; under
        // bf16 its forward passes run in autocast, its backward pass outside.
        let (tx, mut terms, tv_term) = precision.run(device, || {
            let tx = t.forward_t(x, true);
            // Under DiffAugment, T(x) and x get the same draw: the GAN term sees an augmented
            // T(x), the identity term compares an image with its own transform.
            let (tx_d, x_d) = if augment.any() {
                let s = x.size();
                let aug = Augmentation::sample(augment, s[0], s[2], s[3], device);
                (aug.apply(&tx), aug.apply(x))
            } else {
                (tx.shallow_clone(), x.shallow_clone())
            };
            let (tx_d, x) = (&tx_d, &x_d);
            let terms = match identity {
                Identity::Adaptive => losses::eq14_diat_a_objective(
                    tx_d,
                    x,
                    d,
                    &losses::DiatALossConfig {
                        lambda,
                        identity_layers: IDENTITY_LAYERS.to_vec(),
                        gan,
                    },
                ),
                Identity::VggFace(_) | Identity::None => losses::eq7_diat_objective(
                    tx_d,
                    x,
                    d,
                    match identity {
                        Identity::VggFace(v) => Some(*v),
                        _ => None,
                    },
                    smooth.map(|(f, _)| f),
                    &losses::DiatLossConfig {
                        lambda,
                        gamma: smooth.map(|(_, g)| g).unwrap_or(0.0),
                        identity_layers: IDENTITY_LAYERS.to_vec(),
                        gan,
                    },
                ),
            };
            // Beyond the paper: the total variation of T's change, on the images T's objective saw.
            let tv_term = (tv > 0.0).then(|| losses::tv_change(&(tx_d - x)));
            (tx, terms, tv_term)
        });
        if let Some(v) = &tv_term {
            terms.total = &terms.total + v * tv;
        }
        if grad_ratio && let Some(id) = &terms.identity {
            // ‖∂(λ ℓ_id)/∂T(x)‖ / ‖∂GAN/∂T(x)‖: how the two terms pull on T's output.
            let g_gan = Tensor::run_backward(&[&terms.gan], &[&tx], true, false);
            let g_id = Tensor::run_backward(&[&(id * lambda)], &[&tx], true, false);
            let ratio =
                g_id[0].norm().double_value(&[]) / g_gan[0].norm().double_value(&[]).max(1e-12);
            out.extra.push(("grad_ratio_identity_gan", ratio));
        }
        let losses::ObjectiveTerms {
            total,
            gan: gan_term,
            identity: id,
            smooth: smooth_term,
        } = terms;
        let opt = t_net.opt.as_mut().expect("T trains");
        opt.zero_grad();
        total.backward();
        opt.step();
        last = Some((
            total.detach(),
            gan_term.detach(),
            id.map(|i| i.detach()),
            smooth_term.map(|s| s.detach()),
            tv_term.map(|v| v.detach()),
        ));
    }
    d_net.vs.unfreeze();
    let (total, gan_term, id, sm, tv_last) = last.expect("tstep ≥ 1");
    out.losses.push(("d", d_loss.detach()));
    if let Some(p) = r1_term {
        out.losses.push(("r1", p.detach()));
    }
    out.losses.push(("t", total));
    out.losses.push(("gan", gan_term));
    if let Some(i) = id {
        out.losses.push(("identity", i));
    }
    if let Some(s) = sm {
        out.losses.push(("smooth", s));
    }
    if let Some(v) = tv_last {
        out.losses.push(("tv", v));
    }
    out
}

/// Options of [`train`].
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub run_dir: PathBuf,
    pub resume: bool,
    pub progress: diat_common::progress::Mode,
}

/// What a finished run produced.
#[derive(Debug, Clone)]
pub struct Summary {
    pub run_dir: PathBuf,
    pub stages: Vec<(String, bool)>,
    pub final_dir: PathBuf,
}

/// Installs SIGINT/SIGTERM handlers that ask the loop to checkpoint and stop.
pub fn stop_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(sig, flag.clone());
    }
    flag
}

/// Runs every stage of the pipeline that is not done yet.
pub fn train(cfg: &PipelineConfig, opts: &TrainOptions, stop: Arc<AtomicBool>) -> Result<Summary> {
    let device = cfg.device();
    if device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(true);
    }
    let run = RunDir::prepare(
        &opts.run_dir,
        &cfg.to_toml(),
        opts.resume,
        device,
        cfg.train.seed,
    )?;
    let precision = cfg.train.precision.resolve(device);
    let channels_last = cfg.train.memory_format.channels_last(device, precision);
    tracing::info!(
        "training on {device:?} in {} ({})",
        precision.name(),
        if channels_last {
            "channels-last"
        } else {
            "NCHW"
        }
    );
    let ctx = Ctx {
        cfg,
        run,
        device,
        channels_last,
        precision,
        stop,
        progress: opts.progress,
    };
    let data = TaskData::open(&cfg.task.data, &cfg.task.name, cfg.model.image_size)?;
    let variant = cfg.task.variant;
    let mut stages: Vec<&str> = Vec::new();
    if variant.smooth() {
        stages.extend(["reconstruct", "denoise"]);
    }
    stages.extend(["pretrain_t", "pretrain_d", "adversarial"]);
    if variant.enhanced() {
        stages.push("enhance");
    }
    let mut report = Vec::new();
    for stage in &stages {
        if ctx.run.stage_done(stage) {
            tracing::info!("{stage}: done already, skipped");
            report.push((stage.to_string(), false));
            continue;
        }
        tch::manual_seed(cfg.train.seed as i64);
        match *stage {
            "reconstruct" => stage_reconstruct(&ctx, &data)?,
            "denoise" => stage_denoise(&ctx, &data)?,
            "pretrain_t" => stage_pretrain_t(&ctx, &data)?,
            "pretrain_d" => stage_pretrain_d(&ctx, &data)?,
            "adversarial" => stage_adversarial(&ctx, &data)?,
            _ => stage_enhance(&ctx, &data)?,
        }
        report.push((stage.to_string(), true));
    }
    // The artefacts a user applies or publishes: built under a temporary name, sealed with a
    // completeness record, then renamed into place, so a killed run never leaves a `final/` that
    // looks complete (loaders check the record: diat_common::complete).
    let final_dir = ctx.run.root.join("final");
    let staged = StagedDir::new(&final_dir, true).map_err(|e| TrainError::io(&final_dir, e))?;
    let copy = |stage: &str, src_name: &str, name: &str| -> Result<()> {
        let src = ctx
            .run
            .stage_dir(stage)
            .join(format!("{src_name}.safetensors"));
        if src.exists() {
            let bytes = std::fs::read(&src).map_err(|e| TrainError::io(&src, e))?;
            diat_common::write_atomic(&staged.path().join(format!("{name}.safetensors")), &bytes)
                .map_err(|e| TrainError::io(&final_dir, e))?;
        }
        Ok(())
    };
    copy("adversarial", adversarial_result(cfg), "transform")?;
    copy("adversarial", "discriminator", "discriminator")?;
    copy("enhance", "enhance", "enhance")?;
    if variant.enhanced() && cfg.task.enhancement == Enhancement::Local {
        save_attribute_region(&data.input, staged.path())?;
    }
    diat_common::write_atomic(
        &staged.path().join("pipeline.toml"),
        cfg.to_toml().as_bytes(),
    )
    .map_err(|e| TrainError::io(&final_dir, e))?;
    diat_common::complete::seal(staged.path()).map_err(|e| TrainError::io(&final_dir, e))?;
    staged.commit().map_err(|e| TrainError::io(&final_dir, e))?;
    Ok(Summary {
        run_dir: ctx.run.root.clone(),
        stages: report,
        final_dir,
    })
}

/// A stage that trains one network on batches of one source: `loss(batch)` gives the loss to
/// descend (logged as `loss_<loss_name>`) and extra tensors to log; `sample` the grid rows.
#[allow(clippy::too_many_arguments)]
fn single_net_stage<L, S>(
    ctx: &Ctx<'_>,
    stage: &str,
    (steps, lr, schedule): (u64, f64, LrSchedule),
    net: Net,
    src: &Source,
    stream: u64,
    loss_name: &'static str,
    mut loss: L,
    sample: S,
) -> Result<()>
where
    L: FnMut(&Batch) -> (Tensor, Vec<(&'static str, Tensor)>),
    S: Fn(&[Net]) -> Result<Vec<Tensor>>,
{
    let (cfg, device) = (ctx.cfg, ctx.device);
    let b = cfg.train.batch;
    let mut nets = vec![net];
    run_stage(
        ctx,
        stage,
        steps,
        b as u64,
        &mut nets,
        |start| {
            let mut loader = single_loader(
                src,
                (cfg.train.seed, cfg.train.flip),
                stream,
                b,
                start,
                steps,
                cfg.train.loader_threads,
                device,
            );
            move |nets: &mut [Net], step| {
                let batch = loader
                    .next_item()
                    .expect("loader")
                    .to_device(device, ctx.channels_last);
                if let Some(opt) = nets[0].opt.as_mut() {
                    opt.set_lr(schedule.lr(lr, step, steps));
                }
                let (l, extra) = ctx.precision.run(device, || loss(&batch));
                descend(&mut nets[0], &l);
                let mut losses = vec![(loss_name, l.detach())];
                losses.extend(extra);
                Ok(StepOut {
                    losses,
                    extra: vec![("loader_img_per_s", loader.capacity_ips())],
                })
            }
        },
        sample,
    )
}

fn stage_reconstruct(ctx: &Ctx<'_>, data: &TaskData) -> Result<()> {
    let (cfg, st) = (ctx.cfg, &ctx.cfg.stages.reconstruct);
    let (vgg, _vgg_vs) = vgg(ctx, allow_random_vgg())?;
    let (g_net, g) = new_transform(
        cfg,
        ctx.device,
        "reconstruction",
        "reconstruction",
        Some(st.lr),
    )?;
    let sample = data.sample_batch(cfg.train.sample_images, ctx.device, ctx.channels_last);
    single_net_stage(
        ctx,
        "reconstruct",
        (st.steps, st.lr, st.lr_schedule),
        g_net,
        &data.pretrain,
        10,
        "reconstruct",
        |batch| {
            let x = &batch.images;
            let gx = g.forward_t(x, true);
            let l = losses::eq4_reconstruction_objective(&vgg, &gx, x, &IDENTITY_LAYERS);
            (l, vec![])
        },
        |_| {
            Ok(vec![
                sample.images.shallow_clone(),
                g.forward_t(&sample.images, false),
            ])
        },
    )
}

fn stage_denoise(ctx: &Ctx<'_>, data: &TaskData) -> Result<()> {
    let (cfg, st) = (ctx.cfg, &ctx.cfg.stages.denoise);
    let (mut g_net, g) = new_transform(cfg, ctx.device, "reconstruction", "reconstruction", None)?;
    load_stage_net(ctx, "reconstruct", &mut g_net)?;
    let (f_net, f) = new_denoise(cfg, ctx.device, Some(st.lr))?;
    let sample = data.sample_batch(cfg.train.sample_images, ctx.device, ctx.channels_last);
    single_net_stage(
        ctx,
        "denoise",
        (st.steps, st.lr, st.lr_schedule),
        f_net,
        &data.pretrain,
        11,
        "denoise",
        |batch| {
            let x = &batch.images;
            let gx = tch::no_grad(|| g.forward_t(x, false));
            (losses::eq5_denoise_objective(&f, &gx, x), vec![])
        },
        |_| {
            let gx = g.forward_t(&sample.images, false);
            Ok(vec![
                sample.images.shallow_clone(),
                gx.shallow_clone(),
                f.forward(&gx),
            ])
        },
    )
}

fn stage_pretrain_t(ctx: &Ctx<'_>, data: &TaskData) -> Result<()> {
    let (cfg, st) = (ctx.cfg, &ctx.cfg.stages.pretrain_t);
    let (t_net, t) = new_transform(cfg, ctx.device, "transform", "transform", Some(st.lr))?;
    let sample = data.sample_batch(cfg.train.sample_images, ctx.device, ctx.channels_last);
    single_net_stage(
        ctx,
        "pretrain_t",
        (st.steps, st.lr, st.lr_schedule),
        t_net,
        &data.pretrain,
        1,
        "reconstruction",
        |batch| {
            let x = &batch.images;
            (
                losses::eq8_reconstruction_loss(&t.forward_t(x, true), x),
                vec![],
            )
        },
        |_| {
            Ok(vec![
                sample.images.shallow_clone(),
                t.forward_t(&sample.images, false),
            ])
        },
    )
}

fn stage_pretrain_d(ctx: &Ctx<'_>, data: &TaskData) -> Result<()> {
    let (cfg, st) = (ctx.cfg, &ctx.cfg.stages.pretrain_d);
    let (d_net, d) = new_disc(cfg, ctx.device, Some(st.lr))?;
    single_net_stage(
        ctx,
        "pretrain_d",
        (st.steps, st.lr, st.lr_schedule),
        d_net,
        &data.pretrain,
        2,
        "pretrain_d",
        |batch| {
            let y = batch.labels.as_ref().expect("labelled pretraining store");
            let logits = d.logits(&batch.images);
            let l = losses::eq9_discriminator_pretrain_loss(&logits, y);
            let acc = tch::no_grad(|| {
                logits
                    .ge(0.0)
                    .to_kind(Kind::Float)
                    .eq_tensor(y)
                    .to_kind(Kind::Float)
                    .mean(Kind::Float)
            });
            (l, vec![("accuracy", acc)])
        },
        |_| Ok(vec![]),
    )
}

/// The name under which the adversarial stage keeps T's weight average (`stages.adversarial.ema`).
pub const EMA_T: &str = "transform_ema";

/// Which of the adversarial stage's files is its T: the weight average when `ema` is on, else
/// the last iterate. The enhancement stage and `final/transform.safetensors` take this one.
pub fn adversarial_result(cfg: &PipelineConfig) -> &'static str {
    if cfg.stages.adversarial.ema > 0.0 {
        EMA_T
    } else {
        "transform"
    }
}

fn stage_adversarial(ctx: &Ctx<'_>, data: &TaskData) -> Result<()> {
    let (cfg, st) = (ctx.cfg, &ctx.cfg.stages.adversarial);
    let variant = cfg.task.variant;
    let (mut t_net, t) = new_transform(cfg, ctx.device, "transform", "transform", Some(st.lr_t))?;
    let (mut d_net, d) = new_disc(cfg, ctx.device, Some(st.lr_d))?;
    // Initialization from the pre-trained networks (Algorithm 1 steps 2–3).
    checkpoint::load(
        &t_net.vs,
        &ctx.run
            .stage_dir("pretrain_t")
            .join("transform.safetensors"),
        Some("transform"),
    )?;
    checkpoint::load(
        &d_net.vs,
        &ctx.run
            .stage_dir("pretrain_d")
            .join("discriminator.safetensors"),
        Some("discriminator"),
    )?;
    t_net.opt = Some(FlatAdam::new(&t_net.vs, st.lr_t)?);
    d_net.opt = Some(FlatAdam::new(&d_net.vs, st.lr_d)?);
    let vgg_pair = if variant.vgg_identity() {
        Some(vgg(ctx, allow_random_vgg())?)
    } else {
        None
    };
    let f_pair = if variant.smooth() {
        let (mut f_net, f) = new_denoise(cfg, ctx.device, None)?;
        load_stage_net(ctx, "denoise", &mut f_net)?;
        Some((f_net, f))
    } else {
        None
    };
    let identity = match (&vgg_pair, variant.adaptive()) {
        (_, true) => Identity::Adaptive,
        (Some((v, _)), false) => Identity::VggFace(v),
        (None, false) => Identity::None,
    };
    let smooth = f_pair.as_ref().map(|(_, f)| (f, st.gamma));
    // The weight average of T (`stages.adversarial.ema`): a third network, checkpointed and
    // resumed with the others, starting from the pre-trained T.
    let mut ema = None;
    let mut nets = vec![t_net, d_net];
    if st.ema > 0.0 {
        let vs = ema::copy_store(&nets[0].vs);
        ema = Some(WeightEma::new(&vs, &nets[0].vs, st.ema)?);
        let a_net = Net {
            name: EMA_T,
            arch: nets[0].arch,
            config: nets[0].config.clone(),
            vs,
            opt: None,
        };
        nets.push(a_net);
    }
    let (device, b, seed) = (ctx.device, cfg.train.batch, cfg.train.seed);
    let (dstep, tstep) = (st.dstep as u64, st.tstep as u64);
    let sample = data.sample_batch(cfg.train.sample_images, device, ctx.channels_last);
    let log_every = cfg.train.log_every.max(1);
    let (t, d) = (&t, &d);
    run_stage(
        ctx,
        "adversarial",
        st.steps,
        b as u64 * (2 * dstep + tstep),
        &mut nets,
        |start| {
            let mut loader = adversarial_loader(
                &data.input,
                &data.guided,
                (seed, cfg.train.flip),
                b as usize,
                (dstep, tstep),
                (start, st.steps),
                cfg.train.loader_threads,
                device,
            );
            move |nets: &mut [Net], step| {
                let (xs, aas) = loader.next_item().expect("loader");
                for (net, lr) in nets.iter_mut().zip([st.lr_t, st.lr_d]) {
                    if let Some(opt) = net.opt.as_mut() {
                        opt.set_lr(st.lr_schedule.lr(lr, step, st.steps));
                    }
                }
                let cl = ctx.channels_last;
                let xs: Vec<Tensor> = xs.iter().map(|r| r.to_device(device, cl).images).collect();
                let aas: Vec<Tensor> = aas.iter().map(|r| r.to_device(device, cl).images).collect();
                let mut out = gan_iteration(
                    t,
                    d,
                    nets,
                    &xs,
                    &aas,
                    &identity,
                    smooth,
                    st.lambda,
                    st.gan,
                    (step + 1) % log_every == 0,
                    ctx.precision,
                    &BeyondPaper {
                        r1: st.r1,
                        augment: st.augment,
                        tv: st.tv,
                    },
                );
                if let Some(avg) = ema.as_mut() {
                    avg.update();
                }
                out.extra.push(("loader_img_per_s", loader.capacity_ips()));
                Ok(out)
            }
        },
        |nets| {
            // input | T(x) | with `ema` on, the weight average's T̄(x).
            let mut rows = vec![
                sample.images.shallow_clone(),
                t.forward_t(&sample.images, false),
            ];
            if let [live, _, avg] = nets {
                let x = &sample.images;
                rows.push(ema::with_weights_of(&live.vs, &avg.vs, || {
                    t.forward_t(x, false)
                }));
            }
            Ok(rows)
        },
    )
}

fn stage_enhance(ctx: &Ctx<'_>, data: &TaskData) -> Result<()> {
    let (cfg, st) = (ctx.cfg, &ctx.cfg.stages.enhance);
    let t_name = adversarial_result(cfg);
    let (mut t_net, t) = new_transform(cfg, ctx.device, t_name, "transform", None)?;
    load_stage_net(ctx, "adversarial", &mut t_net)?;
    let (mut d_net, d) = new_disc(cfg, ctx.device, None)?;
    load_stage_net(ctx, "adversarial", &mut d_net)?;
    let sample = data.sample_batch(cfg.train.sample_images, ctx.device, ctx.channels_last);
    match cfg.task.enhancement {
        Enhancement::Local => {
            if !data.input.store.manifest.has_masks {
                return Err(TrainError::Config(format!(
                    "local enhancement needs masks: {} has none (a global task?)",
                    data.input.store.dir.display()
                )));
            }
            let vs = nn::VarStore::new(ctx.device);
            let c = cfg.local_enhance_config();
            let e: LocalEnhanceNet = diat_nets::local_enhance_net(&vs.root(), &c);
            let net = Net {
                name: "enhance",
                arch: "local_enhance",
                config: serde_json::to_value(&c).unwrap_or_default(),
                opt: Some(FlatAdam::new(&vs, st.lr)?),
                vs,
            };
            let vgg_pair = match st.features {
                Features::Vggface => Some(vgg(ctx, allow_random_vgg())?),
                Features::Discriminator => None,
            };
            let region = attribute_region(&data.input).map(|r| r.to_device(ctx.device));
            let betas: Vec<(usize, f64)> = st
                .betas
                .iter()
                .enumerate()
                .map(|(i, &w)| (i + 1, w))
                .collect();
            single_net_stage(
                ctx,
                "enhance",
                (st.steps, st.lr, st.lr_schedule),
                net,
                &data.input,
                5,
                "enhance",
                |batch| {
                    let (x, m) = (&batch.images, batch.masks.as_ref().expect("masked store"));
                    let tx = tch::no_grad(|| t.forward_t(x, false));
                    let etx = e.forward(x, &tx);
                    let l = match &vgg_pair {
                        Some((vgg, _)) => {
                            losses::eq10_local_enhancement_loss(vgg, &etx, &tx, x, m, &betas)
                        }
                        None => eq10_local_enhancement_loss_on_d(&d, &etx, &tx, x, m, &betas),
                    };
                    (l, vec![])
                },
                |_| {
                    // input | T(x) | the model's output: E(x, T(x)) inside the attribute region.
                    let x = &sample.images;
                    let tx = t.forward_t(x, false);
                    let etx = e.forward(x, &tx);
                    let out = match &region {
                        Some(r) => r * etx + (1.0 - r) * x,
                        None => etx,
                    };
                    Ok(vec![x.shallow_clone(), tx, out])
                },
            )
        }
        Enhancement::Global => {
            let (e_net, e) =
                new_transform(cfg, ctx.device, "enhance", "global_enhance", Some(st.lr))?;
            let sigma = st.sigma;
            single_net_stage(
                ctx,
                "enhance",
                (st.steps, st.lr, st.lr_schedule),
                e_net,
                &data.pretrain,
                6,
                "enhance",
                |batch| {
                    let x = &batch.images;
                    let bx = diat_nets::blur::gaussian_blur(x, sigma);
                    (
                        losses::eq11_global_enhancement_loss(&e.forward_t(&bx, true), x),
                        vec![],
                    )
                },
                |_| {
                    let tx = t.forward_t(&sample.images, false);
                    let etx = e.forward_t(&diat_nets::blur::gaussian_blur(&tx, sigma), false);
                    Ok(vec![sample.images.shallow_clone(), tx, etx])
                },
            )
        }
    }
}

/// Mean-mask level above which a pixel belongs to the attribute region.
pub const REGION_LEVEL: f32 = 0.02;

/// The attribute region of a local task, for inference on aligned crops (§3.2, the "masked local
/// version"): the pixels where more than [`REGION_LEVEL`] of the input set's training masks lie,
/// feathered by a Gaussian of σ = S/64 px. A local model's output is then
/// `r ∘ E(x, T(x)) + (1 − r) ∘ x`: outside the region the input is kept exactly, which is what
/// Eq. (10)'s first term trains E to approximate. `None` for a store without masks.
pub fn attribute_region(src: &Source) -> Option<Tensor> {
    let (n, s) = (src.len(), src.size());
    let mut acc = vec![0f32; (s * s) as usize];
    for i in 0..n {
        for (a, &v) in acc.iter_mut().zip(src.store.mask(i)?) {
            *a += f32::from(v) / 255.0;
        }
    }
    let level = REGION_LEVEL * n.max(1) as f32;
    let region: Vec<f32> = acc
        .iter()
        .map(|&a| if a > level { 1.0 } else { 0.0 })
        .collect();
    let r = Tensor::from_slice(&region).view([1, 1, s, s]);
    Some(diat_nets::blur::gaussian_blur(&r, s as f64 / 64.0).clamp(0.0, 1.0))
}

/// Writes `region.safetensors` (see [`attribute_region`]) into a model folder.
fn save_attribute_region(src: &Source, dir: &Path) -> Result<()> {
    let Some(r) = attribute_region(src) else {
        return Ok(());
    };
    let meta = checkpoint::CheckpointMeta::new(
        "attribute_region",
        &json!({ "level": REGION_LEVEL, "feather_sigma_px": src.size() as f64 / 64.0,
                 "masks": src.len() }),
    )?;
    checkpoint::save_tensors(
        &dir.join("region.safetensors"),
        &[("region".to_string(), r)],
        &meta,
    )?;
    Ok(())
}

/// Eq. (10) with the content term on the trained discriminator's conv features instead of
/// VGG-Face (`enhance.features = "discriminator"`): for users without VGG-Face weights, in the
/// spirit of DIAT-A's adaptive perceptual loss (§4). β_i weight D's conv layers 1..3.
pub fn eq10_local_enhancement_loss_on_d(
    d: &Discriminator,
    etx: &Tensor,
    tx: &Tensor,
    x: &Tensor,
    mask: &Tensor,
    betas: &[(usize, f64)],
) -> Tensor {
    let n = tx.size()[0];
    let out = d.forward(&Tensor::cat(&[&(mask * tx), &(mask * etx)], 0));
    let ft: Vec<Tensor> = out.features.iter().map(|f| f.narrow(0, 0, n)).collect();
    let fe: Vec<Tensor> = out.features.iter().map(|f| f.narrow(0, n, n)).collect();
    losses::eq10_pixel_term(etx, x, mask) + losses::eq10_content_term(&ft, &fe, mask, betas)
}
