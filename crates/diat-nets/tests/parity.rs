//! Parity with the PyTorch reference (`scripts/reference/diat_reference.py`, torch 2.11), in fp32
//! on the CPU: every network, every loss of Eq. (1)–(14), the gradient of T's first conv weight
//! through Eq. (14), the VGG-Face importer on published layouts, and Rust checkpoints loaded by
//! the PyTorch modules with `strict=True`.
//!
//! The reference runs through `$DIAT_TORCH_PYTHON` (set by `make setup` in `.cargo/config.toml`)
//! into a temporary directory once per test binary (`parity.py export`): fixed seeds, 32×32
//! images, batch 2, width 0.25. "Relative error" is `max|rust − torch| / max|torch|` over a tensor
//! (for a loss value: `|rust − torch| / |torch|`); the tolerance is 1e-4.

use diat_nets::checkpoint::{self, read_tensors};
use diat_nets::losses::*;
use diat_nets::vggface::{ImportOptions, import_vggface};
use diat_nets::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use tch::{Device, Kind, Tensor, nn, nn::Module, nn::ModuleT};

const TOL: f64 = 1e-4;

fn python() -> String {
    std::env::var("DIAT_TORCH_PYTHON").unwrap_or_else(|_| {
        panic!(
            "DIAT_TORCH_PYTHON is not set: the parity tests need the PyTorch reference. Run `make setup` \
             (it writes .cargo/config.toml, which sets DIAT_TORCH_PYTHON for cargo test) or set it to a \
             python with torch 2.11, numpy and safetensors"
        )
    })
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/reference/parity.py")
}

fn run_python(args: &[&str]) {
    let out = Command::new(python())
        .arg(script())
        .args(args)
        .output()
        .expect("cannot start $DIAT_TORCH_PYTHON");
    assert!(
        out.status.success(),
        "parity.py {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The exported fixtures (one Python run per test binary).
fn fixture_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        run_python(&["export", "--out", dir.path().to_str().unwrap()]);
        dir
    })
    .path()
}

fn values() -> HashMap<String, Tensor> {
    read_tensors(&fixture_dir().join("values.safetensors"))
        .unwrap()
        .0
        .into_iter()
        .collect()
}

fn config<C: serde::de::DeserializeOwned>(net: &str) -> C {
    let text = std::fs::read_to_string(fixture_dir().join("config.json")).unwrap();
    let all: serde_json::Value = serde_json::from_str(&text).unwrap();
    serde_json::from_value(all[net].clone()).unwrap()
}

fn rel_err(got: &Tensor, want: &Tensor) -> f64 {
    assert_eq!(got.size(), want.size(), "shapes differ");
    let scale = want.abs().max().double_value(&[]).max(1e-30);
    (got.to_kind(Kind::Float) - want)
        .abs()
        .max()
        .double_value(&[])
        / scale
}

fn assert_close(what: &str, got: &Tensor, want: &Tensor) {
    let e = rel_err(got, want);
    assert!(e <= TOL, "{what}: relative error {e:.3e} > {TOL:e}");
}

/// A var store holding network `build` with the reference's weights for `net`.
fn with_weights<N>(net: &str, build: impl FnOnce(&nn::Path<'_>) -> N) -> (N, nn::VarStore) {
    let vs = nn::VarStore::new(Device::Cpu);
    let n = build(&vs.root());
    checkpoint::load_weights(&vs, &fixture_dir().join(format!("{net}.safetensors"))).unwrap();
    (n, vs)
}

fn transform_like(net: &str) -> (TransformNet, nn::VarStore) {
    let cfg: TransformConfig = config("transform");
    with_weights(net, |p| transform_net(p, &cfg))
}

fn d_net() -> (Discriminator, nn::VarStore) {
    let cfg: DiscriminatorConfig = config("discriminator");
    with_weights("discriminator", |p| discriminator(p, &cfg))
}

fn vgg() -> (VggFace, nn::VarStore) {
    let cfg: VggFaceConfig = config("vggface");
    let (n, mut vs) = with_weights("vggface", |p| vgg_face(p, &cfg));
    vs.freeze();
    (n, vs)
}

fn f_net() -> (DenoiseNet, nn::VarStore) {
    let cfg: DenoiseConfig = config("denoise");
    with_weights("denoise", |p| denoise_net(p, &cfg))
}

fn le_net() -> (LocalEnhanceNet, nn::VarStore) {
    let cfg: LocalEnhanceConfig = config("local_enhance");
    with_weights("local_enhance", |p| local_enhance_net(p, &cfg))
}

#[test]
fn transform_network_eval_and_training_mode() {
    let v = values();
    let (t, vs) = transform_like("transform");
    let x = &v["x"];
    tch::no_grad(|| {
        assert_close("T eval", &t.forward_t(x, false), &v["t_eval"]);
        // The folded inference network (BN in the convolutions, channels-last) agrees too.
        assert_close(
            "T folded",
            &t.fold(Kind::Float, true).forward(x),
            &v["t_eval"],
        );
        assert_close("T train", &t.forward_t(x, true), &v["t_train"]);
    });
    let vars = vs.variables();
    assert_close(
        "running_mean after a training pass",
        &vars["c1.bn.running_mean"],
        &v["t_train_c1_running_mean"],
    );
    assert_close(
        "running_var after a training pass",
        &vars["c1.bn.running_var"],
        &v["t_train_c1_running_var"],
    );
    assert_eq!(
        vars["c1.bn.num_batches_tracked"].int64_value(&[]),
        v["t_train_c1_num_batches_tracked"].int64_value(&[])
    );
}

#[test]
fn reconstruction_and_global_enhancement_networks() {
    let v = values();
    let (g, _gvs) = transform_like("reconstruction");
    let (eg, _evs) = transform_like("global_enhance");
    tch::no_grad(|| {
        assert_close("g eval", &g.forward_t(&v["x"], false), &v["g_eval"]);
        assert_close(
            "global E eval",
            &eg.forward_t(&v["x"], false),
            &v["ge_eval"],
        );
        let bx = blur::paper_blur(&v["x"]);
        assert_close("B(x)", &bx, &v["blur_x"]);
        assert_close("E(B(x))", &eg.forward_t(&bx, false), &v["ge_blur_eval"]);
    });
}

#[test]
fn discriminator_logits_and_features() {
    let v = values();
    let (d, _vs) = d_net();
    let out = tch::no_grad(|| d.forward(&v["x"]));
    assert_close("D logits", &out.logits, &v["d_logits"]);
    assert_eq!(out.features.len(), 6);
    for (i, f) in out.features.iter().enumerate() {
        assert_close(
            &format!("D conv-{}", i + 1),
            f,
            &v[&format!("d_feat_{}", i + 1)],
        );
    }
}

#[test]
fn vggface_features() {
    let v = values();
    let (vgg, _vs) = vgg();
    let feats = tch::no_grad(|| vgg.features(&v["x"], 13));
    for (i, f) in feats.iter().enumerate() {
        assert_close(
            &format!("VGG-Face conv {}", i + 1),
            f,
            &v[&format!("vgg_feat_{}", i + 1)],
        );
    }
}

#[test]
fn denoising_and_local_enhancement_networks() {
    let v = values();
    let (f, _fvs) = f_net();
    let (e, _evs) = le_net();
    tch::no_grad(|| {
        assert_close("f(x)", &f.forward(&v["x"]), &v["f_x"]);
        assert_close(
            "E_local(x, T(x))",
            &e.forward(&v["x"], &v["t_eval"]),
            &v["le_x_t"],
        );
    });
}

#[test]
fn every_loss_eq1_to_eq14() {
    let v = values();
    let (x, a, mask, y) = (&v["x"], &v["a"], &v["mask"], &v["y"]);
    let (t, _tvs) = transform_like("transform");
    let (g, _gvs) = transform_like("reconstruction");
    let (eg, _egvs) = transform_like("global_enhance");
    let (d, _dvs) = d_net();
    let (vgg, _vvs) = vgg();
    let (f, _fvs) = f_net();
    let (el, _elvs) = le_net();
    let mut got: Vec<(&str, Tensor)> = Vec::new();
    tch::no_grad(|| {
        let tx = t.forward_t(x, true);
        let gx = g.forward_t(x, true);
        let (vx, vt) = (vgg.features(x, 5), vgg.features(&tx, 5));
        got.push(("eq1", eq1_content_loss(&vt[3], &vx[3])));
        got.push((
            "eq2",
            eq2_perceptual_identity_loss(&vgg, &tx, x, &IDENTITY_LAYERS),
        ));
        let real = d.logits(a);
        let fake = d.forward(&tx);
        got.push(("eq3_d", eq3_discriminator_loss(&real, &fake.logits)));
        got.push((
            "eq3_g_non_saturating",
            eq3_generator_loss(&fake.logits, GanLoss::NonSaturating),
        ));
        got.push((
            "eq3_g_saturating",
            eq3_generator_loss(&fake.logits, GanLoss::Saturating),
        ));
        got.push((
            "eq4",
            eq4_reconstruction_objective(&vgg, &gx, x, &IDENTITY_LAYERS),
        ));
        got.push(("eq5", eq5_denoise_objective(&f, &gx, x)));
        got.push(("eq6", eq6_smoothness(&f, &tx)));
        let o7 = eq7_diat_objective(&tx, x, &d, Some(&vgg), Some(&f), &DiatLossConfig::default());
        got.push(("eq7", o7.total));
        got.push(("eq7_gan", o7.gan));
        got.push(("eq7_id", o7.identity.unwrap()));
        got.push(("eq7_smooth", o7.smooth.unwrap()));
        got.push(("eq8", eq8_reconstruction_loss(&tx, x)));
        got.push(("eq9", eq9_discriminator_pretrain_loss(&d.logits(x), y)));
        let etx = el.forward(x, &tx);
        got.push((
            "eq10",
            eq10_local_enhancement_loss(&vgg, &etx, &tx, x, mask, &LOCAL_ENHANCE_LAYERS),
        ));
        got.push((
            "eq11",
            eq11_global_enhancement_loss(&eg.forward_t(&blur::paper_blur(x), true), x),
        ));
        got.push((
            "eq12",
            eq12_adaptive_content_loss(&fake.features[3], &d.forward(x).features[3]),
        ));
        got.push((
            "eq13",
            eq13_adaptive_identity_loss(&d, &tx, x, &IDENTITY_LAYERS),
        ));
        let o14 = eq14_diat_a_objective(&tx, x, &d, &DiatALossConfig::default());
        got.push(("eq14", o14.total));
        got.push(("eq14_gan", o14.gan));
        got.push(("eq14_id", o14.identity.unwrap()));
    });
    // The R1 penalty (not in the paper) needs a graph through D.
    let ar = a.detach().set_requires_grad(true);
    got.push(("r1", r1_penalty(&d.logits(&ar), &ar).detach()));
    let expected: Vec<&String> = v.keys().filter(|k| k.starts_with("loss_")).collect();
    assert_eq!(
        got.len(),
        expected.len(),
        "the reference exports {expected:?}"
    );
    let mut report = Vec::new();
    for (name, value) in &got {
        let want = &v[&format!("loss_{name}")];
        let e = rel_err(value, want);
        report.push(format!(
            "{name}: rust {:.7e} torch {:.7e} rel {e:.1e}",
            value.double_value(&[]),
            want.double_value(&[])
        ));
        assert!(e <= TOL, "{}", report.join("\n"));
    }
    println!("{}", report.join("\n"));
}

#[test]
fn r1_penalty_trains_d_as_the_reference() {
    let v = values();
    let (d, dvs) = d_net();
    let a = v["a"].detach().set_requires_grad(true);
    r1_penalty(&d.logits(&a), &a).backward();
    assert_close(
        "dR1/d conv.0.weight",
        &dvs.variables()["conv.0.weight"].grad(),
        &v["grad_d_conv0_weight_r1"],
    );
}

#[test]
fn transform_with_resize_upsampling_and_residual_output() {
    let v = values();
    let cfg: TransformConfig = config("transform_rr");
    assert_eq!(cfg.upsample, Upsample::Resize);
    assert!(cfg.residual);
    let (t, _vs) = with_weights("transform_rr", |p| transform_net(p, &cfg));
    let x = &v["x"];
    tch::no_grad(|| {
        assert_close(
            "T (resize, residual) eval",
            &t.forward_t(x, false),
            &v["trr_eval"],
        );
        assert_close(
            "T (resize, residual) folded",
            &t.fold(Kind::Float, true).forward(x),
            &v["trr_eval"],
        );
        assert_close(
            "T (resize, residual) train",
            &t.forward_t(x, true),
            &v["trr_train"],
        );
    });
}

#[test]
fn gradient_of_t_through_the_diat_a_objective() {
    let v = values();
    let x = &v["x"];
    let (t, tvs) = transform_like("transform");
    let (d, _dvs) = d_net();
    let cfg = DiatALossConfig::default();
    let vars = tvs.variables();
    let w = &vars["c1.conv.weight"];
    let o = eq14_diat_a_objective(&t.forward_t(x, true), x, &d, &cfg);
    o.total.backward();
    assert_close(
        "dEq14/d c1.conv.weight",
        &w.grad(),
        &v["grad_t_c1_conv_weight"],
    );
    assert_close(
        "dEq14/d res.0.a.bn.weight",
        &vars["res.0.a.bn.weight"].grad(),
        &v["grad_t_res0_a_bn_weight"],
    );
    // The identity term's own gradient (about 1e-4 of the total here).
    for mut p in tvs.trainable_variables() {
        p.zero_grad();
    }
    let o = eq14_diat_a_objective(&t.forward_t(x, true), x, &d, &cfg);
    o.identity.as_ref().unwrap().backward();
    assert_close(
        "dEq13/d c1.conv.weight",
        &w.grad(),
        &v["grad_t_c1_conv_weight_id"],
    );
}

#[test]
fn import_vggface_from_published_pytorch_layouts() {
    let v = values();
    let out = tempfile::tempdir().unwrap();
    for (file, scheme) in [
        ("vggface_dag.pth", "vgg_face_dag"),
        ("vggface_features.pth", "torchvision"),
        ("vggface_legacy.pth", "vgg_face_dag"),
    ] {
        let dst = out.path().join(format!("{file}.safetensors"));
        let report =
            import_vggface(&fixture_dir().join(file), &dst, &ImportOptions::default()).unwrap();
        assert_eq!(report.scheme, scheme);
        assert_eq!(report.width, 0.25);
        assert!(
            !report.dropped.is_empty()
                && report
                    .dropped
                    .iter()
                    .all(|n| n.starts_with("fc") || n.starts_with("classifier"))
        );
        let cfg: VggFaceConfig = checkpoint::read_meta(&dst).unwrap().config(&dst).unwrap();
        let vs = nn::VarStore::new(Device::Cpu);
        let net = vgg_face(&vs.root(), &cfg);
        checkpoint::load(&vs, &dst, Some("vggface")).unwrap();
        let feats = tch::no_grad(|| net.features(&v["x"], 13));
        for (i, f) in feats.iter().enumerate() {
            assert_close(
                &format!("{scheme}: conv {}", i + 1),
                f,
                &v[&format!("vgg_feat_{}", i + 1)],
            );
        }
    }
}

/// Saves a checkpoint of `arch` from Rust with its inputs, for `parity.py load-rust`.
fn stage(
    dir: &Path,
    name: &str,
    vs: &nn::VarStore,
    arch: &str,
    cfg: &impl serde::Serialize,
    inputs: &[(&str, &Tensor)],
) {
    checkpoint::save(vs, &dir.join(format!("{name}.ckpt.safetensors")), arch, cfg).unwrap();
    let named: Vec<(String, Tensor)> = inputs
        .iter()
        .map(|(n, t)| (n.to_string(), t.shallow_clone()))
        .collect();
    let meta = checkpoint::CheckpointMeta::new("inputs", &()).unwrap();
    checkpoint::save_tensors(&dir.join(format!("{name}.in.safetensors")), &named, &meta).unwrap();
}

fn torch_out(dir: &Path, name: &str) -> HashMap<String, Tensor> {
    read_tensors(&dir.join(format!("{name}.out.safetensors")))
        .unwrap()
        .0
        .into_iter()
        .collect()
}

#[test]
fn rust_checkpoints_load_strictly_in_pytorch_and_agree() {
    tch::manual_seed(42);
    let dir = tempfile::tempdir().unwrap();
    let s = 32;
    let x = Tensor::rand([2, 3, s, s], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
    let src = Tensor::rand([2, 3, s, s], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;

    let tcfg = TransformConfig {
        image_size: s,
        ..TransformConfig::tiny(s)
    };
    let tvs = nn::VarStore::new(Device::Cpu);
    let t = transform_net(&tvs.root(), &tcfg);
    tch::no_grad(|| {
        for _ in 0..2 {
            let _ = t.forward_t(&(&x * 0.5 + 0.2), true); // non-trivial running statistics
        }
    });
    stage(
        dir.path(),
        "transform",
        &tvs,
        "transform",
        &tcfg,
        &[("x", &x)],
    );
    let dcfg = DiscriminatorConfig::tiny(s);
    let dvs = nn::VarStore::new(Device::Cpu);
    let d = discriminator(&dvs.root(), &dcfg);
    stage(
        dir.path(),
        "discriminator",
        &dvs,
        "discriminator",
        &dcfg,
        &[("x", &x)],
    );
    let vcfg = VggFaceConfig::tiny(s);
    let vvs = nn::VarStore::new(Device::Cpu);
    let vg = vgg_face(&vvs.root(), &vcfg);
    stage(dir.path(), "vggface", &vvs, "vggface", &vcfg, &[("x", &x)]);
    let fcfg = DenoiseConfig::tiny(s);
    let fvs = nn::VarStore::new(Device::Cpu);
    let f = denoise_net(&fvs.root(), &fcfg);
    stage(dir.path(), "denoise", &fvs, "denoise", &fcfg, &[("x", &x)]);
    let ecfg = LocalEnhanceConfig::tiny(s);
    let evs = nn::VarStore::new(Device::Cpu);
    let e = local_enhance_net(&evs.root(), &ecfg);
    stage(
        dir.path(),
        "local_enhance",
        &evs,
        "local_enhance",
        &ecfg,
        &[("x", &x), ("source", &src)],
    );

    run_python(&["load-rust", "--dir", dir.path().to_str().unwrap()]);

    tch::no_grad(|| {
        assert_close(
            "T",
            &t.forward_t(&x, false),
            &torch_out(dir.path(), "transform")["y"],
        );
        let o = torch_out(dir.path(), "discriminator");
        let dout = d.forward(&x);
        assert_close("D logits", &dout.logits, &o["logits"]);
        assert_close("D conv-5", &dout.features[4], &o["feat_5"]);
        let o = torch_out(dir.path(), "vggface");
        for (i, h) in vg.features(&x, 13).iter().enumerate() {
            assert_close(
                &format!("VGG conv {}", i + 1),
                h,
                &o[&format!("feat_{}", i + 1)],
            );
        }
        assert_close("f", &f.forward(&x), &torch_out(dir.path(), "denoise")["y"]);
        assert_close(
            "E_local",
            &e.forward(&src, &x),
            &torch_out(dir.path(), "local_enhance")["y"],
        );
    });
}
