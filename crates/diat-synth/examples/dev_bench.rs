//! Development helper: quick throughput numbers.
fn main() {
    let n = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(2000);
    let t = std::time::Instant::now();
    let layout = diat_synth::Layout::new(1, n, 10);
    let specs: Vec<_> = (0..n).map(|i| diat_synth::FaceSpec::for_image(&layout, i)).collect();
    println!("spec: {:.3} ms/face", t.elapsed().as_secs_f64() * 1e3 / n as f64);
    let mut r = diat_synth::Renderer::new();
    let mut buf = vec![0u8; 178 * 218 * 3];
    let cpu = || std::fs::read_to_string("/proc/thread-self/schedstat").unwrap().split_whitespace().next().unwrap().parse::<f64>().unwrap();
    let t = std::time::Instant::now();
    let c0 = cpu();
    for s in &specs {
        r.render_rgb8(s, &mut buf);
    }
    println!("render: {:.3} ms/face wall, {:.3} ms/face cpu", t.elapsed().as_secs_f64() * 1e3 / n as f64, (cpu() - c0) / 1e6 / n as f64);
    if std::env::args().nth(2).is_some() {
        let r = diat_synth::bench::run(n as usize, 90);
        println!("{}", serde_json::to_string_pretty(&r).unwrap());
    }
}
