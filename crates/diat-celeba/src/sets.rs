//! Per-task training sets — Algorithm 1 step 1 and §5.1: "we use all the images with the
//! reference attribute as the guided attribute set, and randomly select 2,000 images that are not
//! with the reference attribute as the input set"; all kept images pre-train T and D (steps 2–3).
//!
//! CelebA's attributes are strongly correlated (Eyeglasses=1 faces are 79% male, Eyeglasses=-1
//! faces 39%), and an unbalanced guided set teaches the GAN to change those attributes too. A task
//! therefore names confounding attributes, and the guided set is sampled so that their joint
//! distribution matches the input set's (stratified, seeded), keeping as many images as possible.

use crate::annotations::{ATTRIBUTE_NAMES, attribute_index};
use crate::dataset::{Annotations, Split};
use crate::error::{Error, Result};
use crate::masks::Region;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One attribute-transfer task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    pub name: String,
    /// The reference attribute (a CelebA column name).
    pub attribute: String,
    /// The guided set has `attribute == guided_value`; the input set the opposite.
    pub guided_value: bool,
    /// Local tasks edit one region and carry its mask; global tasks have none.
    #[serde(default)]
    pub region: Option<Region>,
    /// Attributes whose joint distribution the guided set is balanced on.
    #[serde(default)]
    pub confounders: Vec<String>,
}

const PAPER_ATTRS: [&str; 4] = ["Mouth_Slightly_Open", "Eyeglasses", "Male", "Young"];

fn paper_task(name: &str, attribute: &str, guided_value: bool, region: Option<Region>) -> TaskSpec {
    TaskSpec {
        name: name.into(),
        attribute: attribute.into(),
        guided_value,
        region,
        confounders: PAPER_ATTRS
            .iter()
            .filter(|a| **a != attribute)
            .map(|a| a.to_string())
            .collect(),
    }
}

/// The paper's five tasks (§5.2, §5.3). Confounders default to the other paper attributes.
pub fn paper_tasks() -> Vec<TaskSpec> {
    vec![
        paper_task(
            "mouth_open",
            "Mouth_Slightly_Open",
            true,
            Some(Region::Mouth),
        ),
        paper_task(
            "mouth_close",
            "Mouth_Slightly_Open",
            false,
            Some(Region::Mouth),
        ),
        paper_task("eyeglasses_remove", "Eyeglasses", false, Some(Region::Eyes)),
        paper_task("male_to_female", "Male", false, None),
        paper_task("older_to_younger", "Young", true, None),
    ]
}

/// Looks a paper task up by name.
pub fn paper_task_named(name: &str) -> Result<TaskSpec> {
    paper_tasks()
        .into_iter()
        .find(|t| t.name == name)
        .ok_or_else(|| {
            let names: Vec<String> = paper_tasks().into_iter().map(|t| t.name).collect();
            Error::Config(format!(
                "unknown task '{name}' (paper tasks: {})",
                names.join(", ")
            ))
        })
}

impl TaskSpec {
    fn check(&self) -> Result<(usize, Vec<usize>)> {
        let a = attribute_index(&self.attribute).ok_or_else(|| {
            Error::Config(format!(
                "task {}: unknown attribute '{}'",
                self.name, self.attribute
            ))
        })?;
        let c = self
            .confounders
            .iter()
            .map(|n| {
                let i = attribute_index(n).ok_or_else(|| {
                    Error::Config(format!("task {}: unknown confounder '{n}'", self.name))
                })?;
                if i == a {
                    return Err(Error::Config(format!(
                        "task {}: {n} is the reference attribute itself",
                        self.name
                    )));
                }
                Ok(i)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((a, c))
    }
}

/// Selection parameters.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectConfig {
    /// Input-set size (paper: 2,000).
    pub input_size: usize,
    /// Held-out test inputs from the test split.
    pub test_size: usize,
    pub seed: u64,
    /// Balance the guided set on the task's confounders.
    pub balance: bool,
}

impl Default for SelectConfig {
    fn default() -> Self {
        Self {
            input_size: 2000,
            test_size: 200,
            seed: 0,
            balance: true,
        }
    }
}

/// Rows (indices into the annotations) of one task's sets, with the report.
#[derive(Debug, Clone, Serialize)]
pub struct Selection {
    pub task: TaskSpec,
    pub guided: Vec<usize>,
    pub input: Vec<usize>,
    pub test: Vec<usize>,
    pub report: SetReport,
}

/// Attribute proportions (percent) of the sets.
#[derive(Debug, Clone, Serialize)]
pub struct SetReport {
    pub kept_images: usize,
    pub guided_pool: usize,
    pub input_pool: usize,
    pub guided: usize,
    pub input: usize,
    pub test: usize,
    /// Attribute name → [input %, guided before balancing %, guided after %].
    pub proportions: BTreeMap<String, [f64; 3]>,
    pub notes: Vec<String>,
}

fn pct(ann: &Annotations, rows: &[usize], a: usize) -> f64 {
    if rows.is_empty() {
        return 0.0;
    }
    100.0 * rows.iter().filter(|&&r| ann.attrs[r][a]).count() as f64 / rows.len() as f64
}

/// Rows kept for training: landmark clusters not excluded (when clustered).
pub fn kept_rows(ann: &Annotations, excluded_clusters: &[u32]) -> Vec<usize> {
    (0..ann.len())
        .filter(|&i| match &ann.cluster {
            Some(c) => c[i].is_some_and(|c| !excluded_clusters.contains(&c)),
            None => true,
        })
        .collect()
}

fn in_split(ann: &Annotations, i: usize, s: Split) -> bool {
    match &ann.split {
        Some(v) => v[i] == Some(s),
        // Without a partition file everything is training data and nothing is held out.
        None => s == Split::Train,
    }
}

/// Selects the guided, input and test sets of `task` among `kept` rows.
pub fn select(
    ann: &Annotations,
    kept: &[usize],
    task: &TaskSpec,
    cfg: &SelectConfig,
) -> Result<Selection> {
    let (a, conf) = task.check()?;
    let mut notes = Vec::new();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let train: Vec<usize> = kept
        .iter()
        .copied()
        .filter(|&i| in_split(ann, i, Split::Train))
        .collect();
    let guided_pool: Vec<usize> = train
        .iter()
        .copied()
        .filter(|&i| ann.attrs[i][a] == task.guided_value)
        .collect();
    let mut input_pool: Vec<usize> = train
        .iter()
        .copied()
        .filter(|&i| ann.attrs[i][a] != task.guided_value)
        .collect();
    if guided_pool.is_empty() {
        return Err(Error::Empty {
            what: format!("guided set of {}", task.name),
            why: format!(
                "no kept training image has {}={}",
                task.attribute,
                if task.guided_value { 1 } else { -1 }
            ),
        });
    }
    if input_pool.is_empty() {
        return Err(Error::Empty {
            what: format!("input set of {}", task.name),
            why: format!(
                "no kept training image has {}={}",
                task.attribute,
                if task.guided_value { -1 } else { 1 }
            ),
        });
    }
    input_pool.shuffle(&mut rng);
    let mut input: Vec<usize> = input_pool.iter().copied().take(cfg.input_size).collect();
    if input.len() < cfg.input_size {
        notes.push(format!(
            "only {} input images available (asked for {})",
            input.len(),
            cfg.input_size
        ));
    }
    input.sort_unstable();

    let guided = if cfg.balance && !conf.is_empty() {
        balance(
            ann,
            &guided_pool,
            &input,
            &conf,
            &mut rng,
            &mut notes,
            &task.name,
        )?
    } else {
        guided_pool.clone()
    };

    let mut test: Vec<usize> = kept
        .iter()
        .copied()
        .filter(|&i| in_split(ann, i, Split::Test) && ann.attrs[i][a] != task.guided_value)
        .collect();
    test.shuffle(&mut rng);
    test.truncate(cfg.test_size);
    test.sort_unstable();
    if test.is_empty() {
        notes.push("no held-out test inputs (no test split, or none without the attribute)".into());
    }

    let proportions = ATTRIBUTE_NAMES
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (
                n.to_string(),
                [
                    pct(ann, &input, i),
                    pct(ann, &guided_pool, i),
                    pct(ann, &guided, i),
                ],
            )
        })
        .collect();
    let report = SetReport {
        kept_images: kept.len(),
        guided_pool: guided_pool.len(),
        input_pool: input_pool.len(),
        guided: guided.len(),
        input: input.len(),
        test: test.len(),
        proportions,
        notes,
    };
    Ok(Selection {
        task: task.clone(),
        guided,
        input,
        test,
        report,
    })
}

/// Stratified sampling of the guided pool to the input set's joint confounder distribution.
fn balance(
    ann: &Annotations,
    pool: &[usize],
    input: &[usize],
    conf: &[usize],
    rng: &mut ChaCha8Rng,
    notes: &mut Vec<String>,
    task: &str,
) -> Result<Vec<usize>> {
    let key = |i: usize| {
        conf.iter()
            .enumerate()
            .fold(0usize, |k, (b, &c)| k | ((ann.attrs[i][c] as usize) << b))
    };
    let mut in_counts: BTreeMap<usize, usize> = BTreeMap::new();
    for &i in input {
        *in_counts.entry(key(i)).or_default() += 1;
    }
    let mut strata: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for &i in pool {
        strata.entry(key(i)).or_default().push(i);
    }
    let n_in = input.len() as f64;
    // Largest total M with M·p(s) ≤ available(s) for every stratum the input set occupies.
    let mut m = f64::INFINITY;
    for (&k, &c) in &in_counts {
        let avail = strata.get(&k).map_or(0, Vec::len) as f64;
        m = m.min(avail / (c as f64 / n_in));
    }
    let names: Vec<&str> = conf.iter().map(|&c| ATTRIBUTE_NAMES[c]).collect();
    if m < 1.0 {
        let (&k, _) = in_counts
            .iter()
            .find(|(k, _)| strata.get(k).is_none_or(Vec::is_empty))
            .expect("an empty stratum");
        let combo: Vec<String> = names
            .iter()
            .enumerate()
            .map(|(b, n)| format!("{n}={}", if k >> b & 1 == 1 { 1 } else { -1 }))
            .collect();
        return Err(Error::Empty {
            what: format!("balanced guided set of {task}"),
            why: format!(
                "no guided image has {} while the input set does; drop a confounder or use --no-balance",
                combo.join(", ")
            ),
        });
    }
    let mut out = Vec::new();
    for (k, c) in in_counts {
        let target = ((m * c as f64 / n_in).floor() as usize).min(strata[&k].len());
        let mut s = strata[&k].clone();
        s.shuffle(rng);
        out.extend_from_slice(&s[..target]);
    }
    out.sort_unstable();
    notes.push(format!(
        "guided set balanced on {} to the input set's joint distribution: kept {} of {} images",
        names.join(", "),
        out.len(),
        pool.len()
    ));
    Ok(out)
}

impl SetReport {
    /// A human table of the proportions.
    pub fn table(&self) -> String {
        let mut s = format!(
            "kept {} · guided pool {} → guided {} · input pool {} → input {} · test {}\n",
            self.kept_images, self.guided_pool, self.guided, self.input_pool, self.input, self.test
        );
        s.push_str(&format!(
            "{:<22} {:>8} {:>14} {:>14}\n",
            "attribute (%)", "input", "guided before", "guided after"
        ));
        for (name, [i, b, a]) in &self.proportions {
            s.push_str(&format!("{name:<22} {i:>8.1} {b:>14.1} {a:>14.1}\n"));
        }
        for n in &self.notes {
            s.push_str(&format!("note: {n}\n"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A population where glasses correlate with Male, like CelebA.
    fn population(n: usize) -> Annotations {
        let g = attribute_index("Eyeglasses").unwrap();
        let m = attribute_index("Male").unwrap();
        let y = attribute_index("Young").unwrap();
        let attrs = (0..n)
            .map(|i| {
                let mut r = [false; 40];
                r[g] = i % 10 == 0;
                r[m] = if r[g] { i % 50 != 0 } else { i % 5 < 2 };
                r[y] = i % 3 != 0;
                r
            })
            .collect();
        Annotations {
            ids: (0..n).map(|i| format!("{:06}.jpg", i + 1)).collect(),
            attrs,
            identity: None,
            split: Some(
                (0..n)
                    .map(|i| {
                        Some(if i % 10 == 9 {
                            Split::Test
                        } else {
                            Split::Train
                        })
                    })
                    .collect(),
            ),
            landmarks: None,
            cluster: None,
            warnings: vec![],
        }
    }

    #[test]
    fn balancing_matches_the_input_distribution_and_is_seeded() {
        let ann = population(20_000);
        let kept = kept_rows(&ann, &[]);
        let task = paper_task_named("eyeglasses_remove").unwrap();
        let cfg = SelectConfig {
            input_size: 1000,
            ..Default::default()
        };
        let s = select(&ann, &kept, &task, &cfg).unwrap();
        let male = s.report.proportions["Male"];
        assert!(male[0] > 75.0, "input is mostly male: {male:?}");
        assert!(male[1] < 45.0, "unbalanced guided pool is not: {male:?}");
        assert!(
            (male[2] - male[0]).abs() < 1.0,
            "balanced guided matches input: {male:?}"
        );
        let g = attribute_index("Eyeglasses").unwrap();
        assert!(s.guided.iter().all(|&i| !ann.attrs[i][g]));
        assert!(s.input.iter().all(|&i| ann.attrs[i][g]));
        assert!(
            s.test
                .iter()
                .all(|&i| ann.split.as_ref().unwrap()[i] == Some(Split::Test))
        );
        assert_eq!(s.input.len(), 1000);
        let again = select(&ann, &kept, &task, &cfg).unwrap();
        assert_eq!(s.guided, again.guided);
        let other = select(
            &ann,
            &kept,
            &task,
            &SelectConfig {
                seed: 1,
                ..cfg.clone()
            },
        )
        .unwrap();
        assert_ne!(s.input, other.input);
        let unbalanced = select(
            &ann,
            &kept,
            &task,
            &SelectConfig {
                balance: false,
                ..cfg
            },
        )
        .unwrap();
        assert_eq!(unbalanced.guided.len(), unbalanced.report.guided_pool);
    }

    #[test]
    fn empty_sets_are_errors() {
        let mut ann = population(100);
        let g = attribute_index("Eyeglasses").unwrap();
        for r in &mut ann.attrs {
            r[g] = false;
        }
        let kept = kept_rows(&ann, &[]);
        let e = select(
            &ann,
            &kept,
            &paper_task_named("eyeglasses_remove").unwrap(),
            &SelectConfig::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("empty input set"), "{e}");
        assert!(paper_task_named("nope").is_err());
    }
}
