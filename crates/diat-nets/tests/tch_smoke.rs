//! libtorch through tch works on this machine: a small conv net trains on the CPU.

use tch::{Device, Kind, Tensor, nn, nn::Module, nn::OptimizerConfig};

#[test]
fn conv_net_forward_backward_and_adam_reduce_the_loss() {
    tch::manual_seed(7);
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    let pad = nn::ConvConfig {
        padding: 1,
        ..Default::default()
    };
    let net = nn::seq()
        .add(nn::conv2d(&root / "c1", 3, 8, 3, pad))
        .add_fn(|x| x.relu())
        .add(nn::conv2d(&root / "c2", 8, 3, 3, pad));
    // Learn to reproduce a fixed smooth target image from noise.
    let x = Tensor::randn([4, 3, 16, 16], (Kind::Float, Device::Cpu));
    let target = x
        .shallow_clone()
        .avg_pool2d(3, 1, 1, false, true, None::<i64>);
    let loss_of = |net: &nn::Sequential| (net.forward(&x) - &target).square().mean(Kind::Float);

    let out = net.forward(&x);
    assert_eq!(out.size(), [4, 3, 16, 16]);
    let mut opt = nn::Adam::default().build(&vs, 1e-2).unwrap();
    let first = loss_of(&net);
    opt.zero_grad();
    first.backward();
    let vars = vs.variables();
    let w = &vars["c1.weight"];
    assert_eq!(w.grad().size(), [8, 3, 3, 3]);
    assert_eq!(vars["c2.bias"].grad().size(), [3]);
    assert!(
        w.grad().abs().sum(Kind::Float).double_value(&[]) > 0.0,
        "gradients flow"
    );
    opt.step();
    let first = first.double_value(&[]);
    let mut last = first;
    for _ in 0..30 {
        let loss = loss_of(&net);
        opt.backward_step(&loss);
        last = loss.double_value(&[]);
    }
    assert!(last.is_finite());
    assert!(
        last < 0.5 * first,
        "Adam should at least halve the loss: {first} -> {last}"
    );
}
