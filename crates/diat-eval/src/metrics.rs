//! Binary classification counts: accuracy and balanced accuracy (the mean of the true positive
//! and true negative rates, which a classifier answering "no" to a rare attribute cannot game).

use serde::{Deserialize, Serialize};

/// Confusion counts of one attribute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub tp: u64,
    pub tn: u64,
    pub fp: u64,
    pub fn_: u64,
}

impl Counts {
    pub fn add(&mut self, truth: bool, predicted: bool) {
        match (truth, predicted) {
            (true, true) => self.tp += 1,
            (false, false) => self.tn += 1,
            (false, true) => self.fp += 1,
            (true, false) => self.fn_ += 1,
        }
    }
    pub fn total(&self) -> u64 {
        self.tp + self.tn + self.fp + self.fn_
    }
    pub fn positives(&self) -> u64 {
        self.tp + self.fn_
    }
    pub fn accuracy(&self) -> f64 {
        (self.tp + self.tn) as f64 / self.total().max(1) as f64
    }
    /// (TPR + TNR) / 2; a class without examples counts as fully right.
    pub fn balanced_accuracy(&self) -> f64 {
        let rate = |hit: u64, miss: u64| {
            if hit + miss == 0 {
                1.0
            } else {
                hit as f64 / (hit + miss) as f64
            }
        };
        0.5 * (rate(self.tp, self.fn_) + rate(self.tn, self.fp))
    }
}

/// One attribute's figures, for reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributeScore {
    pub attribute: String,
    pub faces: u64,
    pub positives: u64,
    pub accuracy: f64,
    pub balanced_accuracy: f64,
    pub counts: Counts,
}

impl AttributeScore {
    pub fn new(attribute: &str, c: Counts) -> Self {
        Self {
            attribute: attribute.into(),
            faces: c.total(),
            positives: c.positives(),
            accuracy: c.accuracy(),
            balanced_accuracy: c.balanced_accuracy(),
            counts: c,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracy_and_balanced_accuracy() {
        let mut c = Counts::default();
        // 90 negatives all right, 10 positives of which 5 found.
        for _ in 0..90 {
            c.add(false, false);
        }
        for k in 0..10 {
            c.add(true, k < 5);
        }
        assert!((c.accuracy() - 0.95).abs() < 1e-12);
        assert!((c.balanced_accuracy() - 0.75).abs() < 1e-12);
        assert_eq!(c.positives(), 10);
    }
}
