//! The data loader: batches from the packed stores of `diat data sets`, in an order that is a
//! pure function of (seed, stream, step) — so a resumed run sees exactly the batches the
//! uninterrupted run would have — assembled on worker threads ahead of the training loop.

use crate::error::{Result, TrainError};
use diat_celeba::split::splitmix64;
use diat_celeba::store::Store;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use tch::{Device, Kind, Tensor};

/// A store with optional per-image labels (Eq. 9).
#[derive(Debug, Clone)]
pub struct Source {
    pub store: Arc<Store>,
    pub labels: Option<Arc<Vec<f32>>>,
}

impl Source {
    pub fn open(dir: &Path) -> Result<Self> {
        let store = Store::open(dir)?;
        if store.is_empty() {
            return Err(TrainError::Config(format!(
                "{} holds no image",
                dir.display()
            )));
        }
        Ok(Self {
            store: Arc::new(store),
            labels: None,
        })
    }

    /// Labels y ∈ {0,1}: whether each image has `attribute == value`.
    pub fn with_labels(mut self, attribute: &str, value: bool) -> Result<Self> {
        let meta = self.store.meta()?;
        let col = meta
            .column(attribute)
            .and_then(|c| c.bool().cloned())
            .map_err(|e| {
                TrainError::Config(format!(
                    "{}: attribute {attribute}: {e}",
                    self.store.dir.display()
                ))
            })?;
        let labels = col
            .iter()
            .map(|v| {
                if v.unwrap_or(false) == value {
                    1.0
                } else {
                    0.0
                }
            })
            .collect();
        self.labels = Some(Arc::new(labels));
        Ok(self)
    }

    pub fn len(&self) -> usize {
        self.store.len()
    }
    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }
    pub fn size(&self) -> i64 {
        self.store.size() as i64
    }
}

/// N×S×S×3 uint8 RGB pixels → N×3×S×S floats in [-1, 1] on `device` (moved as bytes: 4× less
/// traffic than floats), the networks' input convention.
///
/// The copy never waits for the device: from page-locked memory ([`RawBatch::pinned`]) it is a
/// DMA transfer queued on the stream, from pageable memory CUDA stages the bytes before
/// returning. (A blocking copy would synchronise the stream every step, so the CPU could never
/// queue the next step's kernels while the GPU runs this one's.)
pub fn images_to_device(hwc: &Tensor, device: Device) -> Tensor {
    images_to_device_as(hwc, device, false)
}

/// [`images_to_device`], laid out channels-last (NHWC in memory, N×3×S×S in shape) when
/// `channels_last`: the uint8 pixels already are, so that layout costs nothing.
pub fn images_to_device_as(hwc: &Tensor, device: Device, channels_last: bool) -> Tensor {
    let x = to_device_async(hwc, device)
        .permute([0, 3, 1, 2])
        .to_kind(Kind::Float)
        / 127.5
        - 1.0;
    if channels_last {
        diat_nets::layers::to_channels_last(&x)
    } else {
        x.contiguous()
    }
}

/// Host → `device` without a stream synchronisation (see [`images_to_device`]); a no-op copy on
/// the CPU.
fn to_device_async(t: &Tensor, device: Device) -> Tensor {
    if t.device() == device {
        t.shallow_clone()
    } else {
        t.to_device_(device, t.kind(), true, false)
    }
}

/// The store indices of batch `step` of `stream`: epoch-wise permutations seeded by
/// (seed, stream, epoch), consumed `batch` at a time.
pub fn batch_indices(
    seed: u64,
    stream: u64,
    step: u64,
    batch: usize,
    len: usize,
    cache: &mut BTreeMap<u64, Vec<usize>>,
) -> Vec<usize> {
    let mut out = Vec::with_capacity(batch);
    for k in 0..batch as u64 {
        let p = step * batch as u64 + k;
        let epoch = p / len as u64;
        let perm = cache.entry(epoch).or_insert_with(|| {
            let mut v: Vec<usize> = (0..len).collect();
            let s = seed
                ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15)
                ^ epoch.wrapping_mul(0xD1B5_4A32_D192_ED03);
            v.shuffle(&mut ChaCha8Rng::seed_from_u64(s));
            v
        });
        out.push(perm[(p % len as u64) as usize]);
    }
    while cache.len() > 2 {
        let first = *cache.keys().next().expect("non-empty");
        cache.remove(&first);
    }
    out
}

/// Which images of batch `step` of `stream` are mirrored left–right (`train.flip`): a fair coin
/// per position, a pure function of (seed, stream, position) like [`batch_indices`], so a
/// resumed run mirrors exactly what the uninterrupted run would have. All `false` when `!on`.
pub fn batch_flips(on: bool, seed: u64, stream: u64, step: u64, batch: usize) -> Vec<bool> {
    (0..batch as u64)
        .map(|k| {
            let p = step * batch as u64 + k;
            on && splitmix64(
                seed ^ stream.wrapping_mul(0xA24B_AED4_963E_E407)
                    ^ p.wrapping_mul(0x9FB2_1C65_1E98_DF25),
            ) >> 63
                == 1
        })
        .collect()
}

/// Appends the `s`×`s` image `src` (`c` bytes a pixel), mirrored left–right when `mirror`.
fn push_image(out: &mut Vec<u8>, src: &[u8], s: usize, c: usize, mirror: bool) {
    if !mirror {
        out.extend_from_slice(src);
        return;
    }
    for row in src.chunks_exact(s * c) {
        for px in row.chunks_exact(c).rev() {
            out.extend_from_slice(px);
        }
    }
}

/// One batch on the CPU: images N×S×S×3 uint8, masks N×S×S uint8, labels N.
#[derive(Debug)]
pub struct RawBatch {
    pub images: Tensor,
    pub masks: Option<Tensor>,
    pub labels: Option<Tensor>,
}

/// One batch on the training device: images N×3×S×S float in [-1, 1], masks N×1×S×S in {0, 1}.
#[derive(Debug)]
pub struct Batch {
    pub images: Tensor,
    pub masks: Option<Tensor>,
    pub labels: Option<Tensor>,
}

impl RawBatch {
    /// Gathers `idx` of `src`.
    pub fn gather(src: &Source, idx: &[usize]) -> Self {
        Self::gather_mirrored(src, idx, &[])
    }

    /// Gathers `idx` of `src`, image and mask `k` mirrored left–right where `flips[k]` (missing
    /// entries: not mirrored).
    pub fn gather_mirrored(src: &Source, idx: &[usize], flips: &[bool]) -> Self {
        let s = src.store.size();
        let flip = |k: usize| flips.get(k).copied().unwrap_or(false);
        let mut img = Vec::with_capacity(idx.len() * s * s * 3);
        for (k, &i) in idx.iter().enumerate() {
            push_image(&mut img, src.store.image(i), s, 3, flip(k));
        }
        let n = idx.len() as i64;
        let images = Tensor::from_slice(&img).view([n, s as i64, s as i64, 3]);
        let masks = src.store.manifest.has_masks.then(|| {
            let mut m = Vec::with_capacity(idx.len() * s * s);
            for (k, &i) in idx.iter().enumerate() {
                push_image(
                    &mut m,
                    src.store.mask(i).expect("masked store"),
                    s,
                    1,
                    flip(k),
                );
            }
            Tensor::from_slice(&m).view([n, 1, s as i64, s as i64])
        });
        let labels = src
            .labels
            .as_ref()
            .map(|l| Tensor::from_slice(&idx.iter().map(|&i| l[i]).collect::<Vec<f32>>()));
        Self {
            images,
            masks,
            labels,
        }
    }

    /// For a CUDA `device`: the same batch in page-locked host memory, so that
    /// [`RawBatch::to_device`] is an asynchronous DMA transfer (what PyTorch's DataLoader does
    /// with `pin_memory=True`). Called on the loader's worker threads. Elsewhere, or if pinning
    /// fails (no CUDA driver, page-locked memory exhausted), the batch is returned as it is.
    pub fn pinned(self, device: Device) -> Self {
        if !device.is_cuda() {
            return self;
        }
        let pin = |t: Tensor| t.f_pin_memory(device).unwrap_or(t);
        Self {
            images: pin(self.images),
            masks: self.masks.map(pin),
            labels: self.labels.map(pin),
        }
    }

    /// Moves to `device` and converts (on the device: 4× less traffic than floats), images
    /// channels-last when `channels_last`.
    pub fn to_device(&self, device: Device, channels_last: bool) -> Batch {
        Batch {
            images: images_to_device_as(&self.images, device, channels_last),
            masks: self
                .masks
                .as_ref()
                .map(|m| (to_device_async(m, device).to_kind(Kind::Float) / 255.0).contiguous()),
            labels: self.labels.as_ref().map(|l| to_device_async(l, device)),
        }
    }
}

/// Produces the raw batches of steps `start..end` on worker threads, delivered in step order,
/// at most `depth` ahead of the consumer. `make(step)` must be a pure function of the step.
pub struct Prefetcher<T: Send + 'static> {
    rx: mpsc::Receiver<(u64, T)>,
    pending: BTreeMap<u64, T>,
    next: u64,
    end: u64,
    produced_images: Arc<AtomicU64>,
    busy_nanos: Arc<AtomicU64>,
    threads: usize,
}

impl<T: Send + 'static> std::fmt::Debug for Prefetcher<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Prefetcher(next {}, end {})", self.next, self.end)
    }
}

impl<T: Send + 'static> Prefetcher<T> {
    pub fn new<F>(
        start: u64,
        end: u64,
        threads: usize,
        depth: usize,
        images_per_item: u64,
        make: F,
    ) -> Self
    where
        F: Fn(u64) -> T + Send + Sync + 'static,
    {
        let threads = threads.max(1);
        let (tx, rx) = mpsc::sync_channel(depth.max(1));
        let make = Arc::new(make);
        let produced_images = Arc::new(AtomicU64::new(0));
        let busy_nanos = Arc::new(AtomicU64::new(0));
        for w in 0..threads as u64 {
            let (tx, make, produced, busy) = (
                tx.clone(),
                make.clone(),
                produced_images.clone(),
                busy_nanos.clone(),
            );
            std::thread::spawn(move || {
                let mut step = start + w;
                while step < end {
                    let t0 = std::time::Instant::now();
                    let item = make(step);
                    busy.fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
                    produced.fetch_add(images_per_item, Ordering::Relaxed);
                    if tx.send((step, item)).is_err() {
                        return; // consumer gone
                    }
                    step += threads as u64;
                }
            });
        }
        Self {
            rx,
            pending: BTreeMap::new(),
            next: start,
            end,
            produced_images,
            busy_nanos,
            threads,
        }
    }

    /// The item of the next step, in order.
    pub fn next_item(&mut self) -> Option<T> {
        if self.next >= self.end {
            return None;
        }
        loop {
            if let Some(item) = self.pending.remove(&self.next) {
                self.next += 1;
                return Some(item);
            }
            match self.rx.recv() {
                Ok((s, item)) => {
                    self.pending.insert(s, item);
                }
                Err(_) => return None,
            }
        }
    }

    /// What the loader could sustain: images per second of worker time × workers.
    pub fn capacity_ips(&self) -> f64 {
        let busy = self.busy_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        if busy <= 0.0 {
            0.0
        } else {
            self.produced_images.load(Ordering::Relaxed) as f64 / busy * self.threads as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_a_pure_function_of_the_step() {
        let mut c1 = BTreeMap::new();
        let mut c2 = BTreeMap::new();
        let run: Vec<Vec<usize>> = (0..10)
            .map(|s| batch_indices(7, 1, s, 4, 10, &mut c1))
            .collect();
        // Resuming at step 6 with a fresh cache yields the same batches.
        let resumed: Vec<Vec<usize>> = (6..10)
            .map(|s| batch_indices(7, 1, s, 4, 10, &mut c2))
            .collect();
        assert_eq!(&run[6..], &resumed[..]);
        // Each epoch is a permutation.
        let mut first: Vec<usize> = run[..5].concat()[..10].to_vec();
        first.sort();
        assert_eq!(first, (0..10).collect::<Vec<_>>());
        assert_ne!(batch_indices(8, 1, 0, 4, 10, &mut BTreeMap::new()), run[0]);
    }

    #[test]
    fn flips_are_a_pure_function_of_the_position_and_mirror_rows() {
        let run: Vec<bool> = (0..50)
            .flat_map(|s| batch_flips(true, 3, 4, s, 8))
            .collect();
        let resumed: Vec<bool> = (30..50)
            .flat_map(|s| batch_flips(true, 3, 4, s, 8))
            .collect();
        assert_eq!(&run[30 * 8..], &resumed[..]);
        let heads = run.iter().filter(|&&f| f).count();
        assert!((150..250).contains(&heads), "{heads} of 400 mirrored");
        assert_ne!(
            run,
            (0..50)
                .flat_map(|s| batch_flips(true, 3, 5, s, 8))
                .collect::<Vec<_>>()
        );
        assert!(batch_flips(false, 3, 4, 0, 64).iter().all(|&f| !f));
        // A 2×2 RGB image: each row's pixels reversed, channels kept.
        let img = [1u8, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        let mut out = Vec::new();
        push_image(&mut out, &img, 2, 3, true);
        assert_eq!(out, [4, 5, 6, 1, 2, 3, 10, 11, 12, 7, 8, 9]);
        out.clear();
        push_image(&mut out, &img, 2, 3, false);
        assert_eq!(out, img);
    }

    #[test]
    fn images_convert_alike_in_both_memory_formats() {
        use diat_nets::layers::is_channels_last;
        let hwc = Tensor::randint(256, [3, 8, 8, 3], (Kind::Uint8, Device::Cpu));
        let nchw = images_to_device(&hwc, Device::Cpu);
        let cl = images_to_device_as(&hwc, Device::Cpu, true);
        assert_eq!(nchw.size(), [3, 3, 8, 8]);
        assert!(nchw.is_contiguous() && !is_channels_last(&nchw));
        assert!(is_channels_last(&cl));
        assert_eq!((&nchw - &cl).abs().max().double_value(&[]), 0.0);
        // [-1, 1], pixel (0, 0) of image 0 at channel 1.
        let v = nchw.double_value(&[0, 1, 0, 0]);
        let p = f64::from(hwc.int64_value(&[0, 0, 0, 1]) as u8);
        assert!((v - (p / 127.5 - 1.0)).abs() < 1e-6);
        // Pinning is a no-op away from CUDA.
        let raw = RawBatch {
            images: hwc.shallow_clone(),
            masks: None,
            labels: None,
        }
        .pinned(Device::Cpu);
        assert_eq!(raw.images.data_ptr(), hwc.data_ptr());
        // For CUDA: page-locked where a driver is present, else (here) the batch unchanged —
        // never a panic; the pixels are the same either way.
        let raw = raw.pinned(Device::Cuda(0));
        assert!(raw.images.device() == Device::Cpu && raw.images.equal(&hwc));
        assert_eq!(
            raw.images.is_pinned(Device::Cuda(0)),
            tch::Cuda::is_available()
        );
    }

    #[test]
    fn prefetcher_keeps_order() {
        let mut p = Prefetcher::new(3, 40, 3, 4, 1, |s| s * 2);
        let got: Vec<u64> = std::iter::from_fn(|| p.next_item()).collect();
        assert_eq!(got, (3..40).map(|s| s * 2).collect::<Vec<_>>());
    }
}
