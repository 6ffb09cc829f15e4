//! Landmark clustering — paper §5.1: "According to the 5 landmarks provided by CelebA for each
//! image, the faces are clustered into 62 clusters using k-means. By observing the representative
//! images of each cluster, we exclude 14 clusters due to that their faces are partially invisible."
//!
//! k-means (linfa-clustering, seeded) on the 10-dimensional landmark vectors; clusters are relabelled
//! by decreasing size so ids are stable for a given seed. Which clusters are excluded is not code:
//! it lives in a reviewable TOML file (`pipelines/clusters.toml`), where a deterministic default
//! heuristic can be overridden cluster by cluster by a curator.

use crate::dataset::Annotations;
use crate::error::{Error, Result};
use linfa::prelude::*;
use linfa_clustering::KMeans;
use ndarray::Array2;
use rand_xoshiro::Xoshiro256Plus;
use rand_xoshiro::rand_core::SeedableRng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;

/// k-means parameters.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    pub k: usize,
    pub seed: u64,
    pub max_iterations: u64,
    pub tolerance: f64,
    pub runs: usize,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            k: 62,
            seed: 0,
            max_iterations: 300,
            tolerance: 1e-4,
            runs: 3,
        }
    }
}

/// Statistics of one cluster, in aligned-image pixels.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterStats {
    pub cluster: u32,
    pub size: usize,
    pub centroid: [f32; 10],
    /// Mean distance of members to the centroid.
    pub spread: f32,
    /// Inter-ocular distance of the centroid.
    pub eye_distance: f32,
    /// In-plane rotation of the eye line, degrees.
    pub roll_deg: f32,
    /// Horizontal nose offset from the eye midpoint over the eye distance (a yaw proxy: a turned
    /// head hides half the face).
    pub yaw: f32,
    /// Smallest distance of a centroid landmark to the crop border (negative: outside).
    pub border_px: f32,
}

/// The result of clustering.
#[derive(Debug, Clone)]
pub struct Clustering {
    pub config: ClusterConfig,
    /// Cluster per image (None: image without landmarks).
    pub assignments: Vec<Option<u32>>,
    pub stats: Vec<ClusterStats>,
    /// Short hash of the configuration and centroids: decisions in the exclusions file are tied to it.
    pub fingerprint: String,
}

/// Runs k-means on the images that have landmarks.
pub fn cluster_landmarks(
    ann: &Annotations,
    config: &ClusterConfig,
    crop: &crate::crop::CropSpec,
) -> Result<Clustering> {
    let lms = ann.landmarks.as_ref().ok_or_else(|| {
        Error::Config(
            "clustering needs the aligned landmark file (list_landmarks_align_celeba)".into(),
        )
    })?;
    let rows: Vec<usize> = (0..lms.len()).filter(|&i| lms[i].is_some()).collect();
    if rows.len() < config.k {
        return Err(Error::Config(format!(
            "k-means with k={} needs at least that many images with landmarks, found {}",
            config.k,
            rows.len()
        )));
    }
    let mut data = Array2::<f64>::zeros((rows.len(), 10));
    for (r, &i) in rows.iter().enumerate() {
        let l = lms[i].expect("filtered");
        for c in 0..10 {
            data[[r, c]] = l[c] as f64;
        }
    }
    let dataset = DatasetBase::from(data.clone());
    let rng = Xoshiro256Plus::seed_from_u64(config.seed);
    let model = KMeans::params_with_rng(config.k, rng)
        .max_n_iterations(config.max_iterations)
        .tolerance(config.tolerance)
        .n_runs(config.runs)
        .fit(&dataset)
        .map_err(|e| Error::Config(format!("k-means failed: {e}")))?;
    let labels = model.predict(&data);
    let centroids = model.centroids();
    // Relabel by decreasing size, ties by centroid coordinates, so ids are reproducible.
    let mut sizes = vec![0usize; config.k];
    for &l in labels.iter() {
        sizes[l] += 1;
    }
    let mut order: Vec<usize> = (0..config.k).collect();
    order.sort_by(|&a, &b| {
        sizes[b].cmp(&sizes[a]).then_with(|| {
            centroids
                .row(a)
                .iter()
                .partial_cmp(centroids.row(b).iter())
                .unwrap_or(std::cmp::Ordering::Equal)
        })
    });
    let mut new_id = vec![0u32; config.k];
    for (new, &old) in order.iter().enumerate() {
        new_id[old] = new as u32;
    }
    let mut assignments = vec![None; ann.len()];
    let mut spread = vec![0f64; config.k];
    for (r, &i) in rows.iter().enumerate() {
        let l = labels[r];
        assignments[i] = Some(new_id[l]);
        let d: f64 = (0..10)
            .map(|c| (data[[r, c]] - centroids[[l, c]]).powi(2))
            .sum::<f64>()
            .sqrt();
        spread[l] += d;
    }
    let mut hasher = Sha256::new();
    hasher.update(format!(
        "k={} seed={} n={}",
        config.k,
        config.seed,
        rows.len()
    ));
    let stats: Vec<ClusterStats> = order
        .iter()
        .enumerate()
        .map(|(new, &old)| {
            let c: [f32; 10] = std::array::from_fn(|j| centroids[[old, j]] as f32);
            for v in c {
                hasher.update(format!("{:.1};", v));
            }
            geometry(
                new as u32,
                sizes[old],
                &c,
                (spread[old] / sizes[old].max(1) as f64) as f32,
                crop,
            )
        })
        .collect();
    let fingerprint = crate::store::hex(&hasher.finalize())[..16].to_string();
    Ok(Clustering {
        config: config.clone(),
        assignments,
        stats,
        fingerprint,
    })
}

fn geometry(
    cluster: u32,
    size: usize,
    c: &[f32; 10],
    spread: f32,
    crop: &crate::crop::CropSpec,
) -> ClusterStats {
    let (dx, dy) = (c[2] - c[0], c[3] - c[1]);
    let iod = (dx * dx + dy * dy).sqrt().max(1e-3);
    let eye_mid_x = (c[0] + c[2]) / 2.0;
    let mut border = f32::MAX;
    for k in 0..5 {
        let (x, y) = (c[2 * k], c[2 * k + 1]);
        let l = x - crop.left as f32;
        let r = (crop.left + crop.width) as f32 - x;
        let t = y - crop.top as f32;
        let b = (crop.top + crop.height) as f32 - y;
        border = border.min(l.min(r).min(t).min(b));
    }
    ClusterStats {
        cluster,
        size,
        centroid: *c,
        spread,
        eye_distance: iod,
        roll_deg: dy.atan2(dx).to_degrees(),
        yaw: (c[4] - eye_mid_x) / iod,
        border_px: border,
    }
}

/// The default exclusion heuristic's thresholds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heuristic {
    /// Exclude when |yaw| exceeds this (nose offset / eye distance: a turned head).
    pub max_abs_yaw: f32,
    /// Exclude when |roll| exceeds this many degrees.
    pub max_abs_roll_deg: f32,
    /// Exclude when the eye distance over the median cluster's lies outside [lo, hi].
    pub eye_distance_ratio: [f32; 2],
    /// Exclude when a centroid landmark comes closer than this to the crop border (pixels).
    pub min_border_px: f32,
}

impl Default for Heuristic {
    fn default() -> Self {
        Self {
            max_abs_yaw: 0.22,
            max_abs_roll_deg: 10.0,
            eye_distance_ratio: [0.8, 1.25],
            min_border_px: 12.0,
        }
    }
}

/// A curator's decision about one cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    pub cluster: u32,
    pub keep: bool,
    #[serde(default)]
    pub reason: String,
}

/// `pipelines/clusters.toml`: clustering parameters, the heuristic, and per-cluster overrides.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExclusionFile {
    /// Schema version of this file.
    pub version: u32,
    #[serde(default)]
    pub clustering: ClusterConfig,
    #[serde(default)]
    pub heuristic: Heuristic,
    /// Fingerprint of the clustering the overrides were decided on; required when overrides exist.
    #[serde(default)]
    pub fingerprint: Option<String>,
    #[serde(default, rename = "override")]
    pub overrides: Vec<Override>,
}

impl Default for ExclusionFile {
    fn default() -> Self {
        Self {
            version: 1,
            clustering: ClusterConfig::default(),
            heuristic: Heuristic::default(),
            fingerprint: None,
            overrides: vec![],
        }
    }
}

impl ExclusionFile {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let f: Self = toml::from_str(&text).map_err(|e| Error::invalid(path, e.to_string()))?;
        if f.version != 1 {
            return Err(Error::invalid(
                path,
                format!("version {} not supported (expected 1)", f.version),
            ));
        }
        Ok(f)
    }
}

/// The decision for one cluster and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Decision {
    pub cluster: u32,
    pub keep: bool,
    /// "heuristic" or "curator".
    pub source: String,
    pub reason: String,
}

/// Applies the heuristic and the overrides. Overrides tied to another clustering are an error.
pub fn decide(clustering: &Clustering, file: &ExclusionFile) -> Result<Vec<Decision>> {
    if !file.overrides.is_empty() {
        match &file.fingerprint {
            Some(f) if *f == clustering.fingerprint => {}
            other => {
                return Err(Error::Config(format!(
                    "the cluster overrides were decided on clustering {} but this clustering is {}: \
                     review the new contact sheets and update the file",
                    other.as_deref().unwrap_or("(no fingerprint)"),
                    clustering.fingerprint
                )));
            }
        }
    }
    let mut iods: Vec<f32> = clustering.stats.iter().map(|s| s.eye_distance).collect();
    iods.sort_by(|a, b| a.total_cmp(b));
    let median = iods[iods.len() / 2];
    let h = &file.heuristic;
    let mut out = Vec::new();
    for s in &clustering.stats {
        let mut why = Vec::new();
        if s.yaw.abs() > h.max_abs_yaw {
            why.push(format!("yaw {:.2} beyond ±{}", s.yaw, h.max_abs_yaw));
        }
        if s.roll_deg.abs() > h.max_abs_roll_deg {
            why.push(format!(
                "roll {:.1}° beyond ±{}°",
                s.roll_deg, h.max_abs_roll_deg
            ));
        }
        let ratio = s.eye_distance / median;
        if ratio < h.eye_distance_ratio[0] || ratio > h.eye_distance_ratio[1] {
            why.push(format!("eye distance {:.2}× the median", ratio));
        }
        if s.border_px < h.min_border_px {
            why.push(format!(
                "a landmark {:.1}px from the crop border",
                s.border_px
            ));
        }
        let mut d = Decision {
            cluster: s.cluster,
            keep: why.is_empty(),
            source: "heuristic".into(),
            reason: if why.is_empty() {
                "typical frontal face".into()
            } else {
                why.join("; ")
            },
        };
        if let Some(o) = file.overrides.iter().find(|o| o.cluster == s.cluster) {
            d = Decision {
                cluster: s.cluster,
                keep: o.keep,
                source: "curator".into(),
                reason: o.reason.clone(),
            };
        }
        out.push(d);
    }
    if let Some(o) = file
        .overrides
        .iter()
        .find(|o| o.cluster as usize >= clustering.stats.len())
    {
        return Err(Error::Config(format!(
            "override for cluster {} but k = {}",
            o.cluster,
            clustering.stats.len()
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_annotations(n: usize) -> Annotations {
        // Two well separated landmark populations: frontal, and turned (nose far right).
        let landmarks = (0..n)
            .map(|i| {
                let j = (i % 7) as i16 - 3;
                let turned = i % 4 == 0;
                let nose_x = if turned { 100 } else { 88 };
                Some([
                    69 + j,
                    111,
                    107 + j,
                    111,
                    nose_x + j,
                    134,
                    72 + j,
                    152,
                    105 + j,
                    152,
                ])
            })
            .collect();
        Annotations {
            ids: (0..n).map(|i| format!("{:06}.jpg", i + 1)).collect(),
            attrs: vec![[false; 40]; n],
            identity: None,
            split: None,
            landmarks: Some(landmarks),
            cluster: None,
            warnings: vec![],
        }
    }

    #[test]
    fn seeded_reproducible_and_heuristic_flags_turned_heads() {
        let ann = fake_annotations(400);
        let cfg = ClusterConfig {
            k: 2,
            ..Default::default()
        };
        let crop = crate::crop::CropSpec::default();
        let a = cluster_landmarks(&ann, &cfg, &crop).unwrap();
        let b = cluster_landmarks(&ann, &cfg, &crop).unwrap();
        assert_eq!(a.assignments, b.assignments);
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_eq!(a.stats[0].size, 300, "largest cluster first");
        let d = decide(&a, &ExclusionFile::default()).unwrap();
        assert!(d[0].keep, "{d:?}");
        assert!(!d[1].keep && d[1].reason.contains("yaw"), "{d:?}");
        // Curator override, tied to the fingerprint.
        let mut f = ExclusionFile::default();
        f.overrides.push(Override {
            cluster: 1,
            keep: true,
            reason: "looked fine".into(),
        });
        assert!(decide(&a, &f).is_err(), "overrides need the fingerprint");
        f.fingerprint = Some(a.fingerprint.clone());
        let d = decide(&a, &f).unwrap();
        assert!(d[1].keep && d[1].source == "curator");
    }

    #[test]
    fn too_few_images_is_a_clear_error() {
        let ann = fake_annotations(10);
        let e = cluster_landmarks(
            &ann,
            &ClusterConfig::default(),
            &crate::crop::CropSpec::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("k=62"), "{e}");
    }
}
