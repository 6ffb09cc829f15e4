//! Mixed precision as PyTorch's `torch.autocast` does it, on the CPU too: inside
//! [`Precision::run`] with [`Precision::Bf16`], libtorch's autocast dispatch runs convolutions and
//! matrix products in bfloat16 (weights cast once per region, inputs as they come) and the ops of
//! its fp32 list (losses, reductions) in float32, while weights, gradients, optimizer state and
//! BatchNorm statistics stay float32. Backward passes run outside the region, as PyTorch
//! recommends; checkpoints stay fp32.
//!
//! tch exposes only the CUDA switch of autocast (`tch::autocast`); the device-generic switches
//! (`at::autocast::set_autocast_enabled(DeviceType, bool)` and friends, the functions
//! `torch.autocast("cpu", …)` calls) are declared here by their C++ symbols in libtorch_cpu, which
//! every diat binary links already. Their arguments are an `int8_t` enum and a `bool`, passed
//! alike by the C and C++ ABIs of x86-64 and aarch64 Linux.

// The one place diat calls libtorch outside tch: the six autocast switches below.
#![allow(unsafe_code)]

use tch::{Device, Kind};

mod ffi {
    // c10::DeviceType and c10::ScalarType are `enum class : int8_t`.
    unsafe extern "C" {
        #[link_name = "_ZN2at8autocast20set_autocast_enabledEN3c1010DeviceTypeEb"]
        pub fn set_autocast_enabled(device: i8, enabled: bool);
        #[link_name = "_ZN2at8autocast19is_autocast_enabledEN3c1010DeviceTypeE"]
        pub fn is_autocast_enabled(device: i8) -> bool;
        #[link_name = "_ZN2at8autocast18set_autocast_dtypeEN3c1010DeviceTypeENS1_10ScalarTypeE"]
        pub fn set_autocast_dtype(device: i8, dtype: i8);
        #[link_name = "_ZN2at8autocast17increment_nestingEv"]
        pub fn increment_nesting() -> i32;
        #[link_name = "_ZN2at8autocast17decrement_nestingEv"]
        pub fn decrement_nesting() -> i32;
        #[link_name = "_ZN2at8autocast11clear_cacheEv"]
        pub fn clear_cache();
    }
}

/// c10::DeviceType of `device` (CPU 0, CUDA 1).
fn device_type(device: Device) -> i8 {
    if device.is_cuda() { 1 } else { 0 }
}

/// c10::ScalarType codes of the two autocast types.
const BFLOAT16: i8 = 15;
const HALF: i8 = 5;

/// The precision of training's forward passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// Everything in float32 (bit-reproducible with earlier runs).
    #[default]
    Fp32,
    /// Autocast to bfloat16: convolutions and matrix products in bf16, the rest in fp32.
    Bf16,
}

impl Precision {
    /// Runs `f` with autocast on `device` for this precision (nothing for [`Precision::Fp32`]).
    /// Regions nest; on leaving the outermost one the cache of cast weights is cleared, so an
    /// optimizer step between regions is always seen.
    pub fn run<T>(self, device: Device, f: impl FnOnce() -> T) -> T {
        match self {
            Precision::Fp32 => f(),
            Precision::Bf16 => {
                let _guard = Region::enter(device, BFLOAT16);
                f()
            }
        }
    }

    /// The precision named "fp32" or "bf16".
    pub fn from_name(name: &str) -> Option<Precision> {
        match name {
            "fp32" => Some(Precision::Fp32),
            "bf16" => Some(Precision::Bf16),
            _ => None,
        }
    }

    /// "fp32" or "bf16".
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
        }
    }

    /// The tensor kind the autocast region computes in.
    pub fn kind(self) -> Kind {
        match self {
            Precision::Fp32 => Kind::Float,
            Precision::Bf16 => Kind::BFloat16,
        }
    }
}

/// Whether autocast is on for `device` in this thread.
pub fn is_enabled(device: Device) -> bool {
    // SAFETY: a plain getter of thread-local state.
    unsafe { ffi::is_autocast_enabled(device_type(device)) }
}

/// An autocast region: restores the previous state on drop (also when unwinding).
struct Region {
    device: i8,
    was_enabled: bool,
}

impl Region {
    fn enter(device: Device, dtype: i8) -> Region {
        let device = device_type(device);
        debug_assert!(dtype == BFLOAT16 || dtype == HALF);
        // SAFETY: thread-local autocast switches, as torch.autocast.__enter__ sets them.
        unsafe {
            let was_enabled = ffi::is_autocast_enabled(device);
            ffi::set_autocast_enabled(device, true);
            ffi::set_autocast_dtype(device, dtype);
            ffi::increment_nesting();
            Region {
                device,
                was_enabled,
            }
        }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: as torch.autocast.__exit__: clear the cast cache when leaving the outermost
        // region, then restore the previous switch.
        unsafe {
            if ffi::decrement_nesting() == 0 {
                ffi::clear_cache();
            }
            ffi::set_autocast_enabled(self.device, self.was_enabled);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Tensor;

    #[test]
    fn bf16_region_runs_convolutions_in_bf16_and_losses_in_fp32() {
        let cpu = Device::Cpu;
        let x = Tensor::randn([2, 3, 8, 8], (Kind::Float, cpu));
        let w = Tensor::randn([4, 3, 3, 3], (Kind::Float, cpu)).set_requires_grad(true);
        let conv = |x: &Tensor| x.conv2d(&w, None::<Tensor>, [1, 1], [1, 1], [1, 1], 1);
        assert!(!is_enabled(cpu));
        let (y, loss) = Precision::Bf16.run(cpu, || {
            assert!(is_enabled(cpu));
            let y = conv(&x);
            // mse_loss is on autocast's fp32 list.
            let loss = y.mse_loss(&Tensor::zeros_like(&y), tch::Reduction::Mean);
            (y, loss)
        });
        assert!(!is_enabled(cpu), "the region restores the switch");
        assert_eq!(y.kind(), Kind::BFloat16);
        assert_eq!(loss.kind(), Kind::Float);
        // The gradient reaches the fp32 weight as fp32, close to the fp32 computation's.
        loss.backward();
        let g16 = w.grad().copy();
        assert_eq!(g16.kind(), Kind::Float);
        let _ = w.grad().zero_();
        let y32 = Precision::Fp32.run(cpu, || conv(&x));
        assert_eq!(y32.kind(), Kind::Float);
        y32.mse_loss(&Tensor::zeros_like(&y32), tch::Reduction::Mean)
            .backward();
        let rel = (&g16 - w.grad()).norm().double_value(&[]) / w.grad().norm().double_value(&[]);
        assert!(rel < 0.05, "{rel}");
        // Nested regions keep autocast on until the outermost ends, also after a panic.
        Precision::Bf16.run(cpu, || {
            Precision::Bf16.run(cpu, || ());
            assert!(is_enabled(cpu));
        });
        let caught = std::panic::catch_unwind(|| Precision::Bf16.run(cpu, || panic!("inside")));
        assert!(caught.is_err() && !is_enabled(cpu));
    }

    #[test]
    fn an_optimizer_step_between_regions_is_seen() {
        // The cast cache is cleared on leaving a region: a weight updated in place between two
        // regions is cast again, not taken from the cache.
        let cpu = Device::Cpu;
        let w = Tensor::ones([1, 1, 1, 1], (Kind::Float, cpu)).set_requires_grad(true);
        let x = Tensor::ones([1, 1, 2, 2], (Kind::Float, cpu));
        let run = || {
            Precision::Bf16.run(cpu, || {
                x.conv2d(&w, None::<Tensor>, [1, 1], [0, 0], [1, 1], 1)
                    .to_kind(Kind::Float)
                    .mean(Kind::Float)
                    .double_value(&[])
            })
        };
        assert_eq!(run(), 1.0);
        tch::no_grad(|| {
            let _ = w.shallow_clone().fill_(3.0);
        });
        assert_eq!(run(), 3.0);
    }
}
