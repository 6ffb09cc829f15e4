//! Timing loops for benchmarks (`diat bench …`), shared so every benchmark measures the same way.

use crate::layers::synchronize;
use std::time::Instant;
use tch::Device;

/// Runs `f` `warmup` times untimed, then in rounds until both `min_iters` and `min_time` are
/// reached, synchronising the device before reading the clock. Returns (iterations, seconds).
pub fn measure(
    device: Device,
    warmup: usize,
    min_time: f64,
    min_iters: usize,
    mut f: impl FnMut(),
) -> (usize, f64) {
    for _ in 0..warmup {
        f();
    }
    synchronize(device);
    let start = Instant::now();
    let (mut n, mut round) = (0, min_iters.max(1));
    loop {
        for _ in 0..round {
            f();
        }
        n += round;
        synchronize(device);
        let secs = start.elapsed().as_secs_f64();
        if secs >= min_time {
            return (n, secs);
        }
        // Aim at the remaining time from the rate so far (at least one more iteration).
        round = ((min_time - secs) / (secs / n as f64)).ceil().max(1.0) as usize;
    }
}
