//! Measuring a model on labelled examples: the figures in `bench/README.md` and the held-out
//! check in the tests come from here.

use std::fmt;

use crate::model::Model;

/// How a model did on labelled examples at one threshold (a text counts as flagged when its
/// score is at or above the threshold). Spam is the positive class. A ratio whose denominator
/// is zero (no text flagged, or no spam, or no ham) is 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Of the flagged texts, the share that is spam.
    pub precision: f64,
    /// Of the spam, the share flagged.
    pub recall: f64,
    /// The harmonic mean of precision and recall.
    pub f1: f64,
    /// Of all texts, the share judged right.
    pub accuracy: f64,
    /// Of the ham, the share flagged: the false-positive rate, the figure viewers feel.
    pub ham_blocked: f64,
    /// How many ham texts there were.
    pub ham: usize,
    /// How many spam texts there were.
    pub spam: usize,
}

/// Scores every example with `model` and compares with its label at `threshold`.
pub fn evaluate<'a>(
    model: &Model,
    examples: impl IntoIterator<Item = (&'a str, bool)>,
    threshold: f64,
) -> Evaluation {
    Evaluation::from_scores(
        examples
            .into_iter()
            .map(|(text, is_spam)| (model.score(text), is_spam)),
        threshold,
    )
}

impl Evaluation {
    /// The figures of already-scored examples `(score, is_spam)` at `threshold`: for trying
    /// many thresholds on one set of scores without scoring again.
    pub fn from_scores(
        scored: impl IntoIterator<Item = (f64, bool)>,
        threshold: f64,
    ) -> Evaluation {
        let (mut spam_caught, mut spam_missed, mut ham_flagged, mut ham_passed) = (0usize, 0, 0, 0);
        for (score, is_spam) in scored {
            match (is_spam, score >= threshold) {
                (true, true) => spam_caught += 1,
                (true, false) => spam_missed += 1,
                (false, true) => ham_flagged += 1,
                (false, false) => ham_passed += 1,
            }
        }
        let precision = ratio(spam_caught, spam_caught + ham_flagged);
        let recall = ratio(spam_caught, spam_caught + spam_missed);
        let f1 = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        let ham = ham_flagged + ham_passed;
        let spam = spam_caught + spam_missed;
        Evaluation {
            precision,
            recall,
            f1,
            accuracy: ratio(spam_caught + ham_passed, ham + spam),
            ham_blocked: ratio(ham_flagged, ham),
            ham,
            spam,
        }
    }
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

impl fmt::Display for Evaluation {
    /// One line of percentages: "precision 99.1 % recall 97.0 % F1 98.0 % ...".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "precision {:.1} %  recall {:.1} %  F1 {:.1} %  accuracy {:.2} %  ham blocked {:.2} %  ({} ham, {} spam)",
            self.precision * 100.0,
            self.recall * 100.0,
            self.f1 * 100.0,
            self.accuracy * 100.0,
            self.ham_blocked * 100.0,
            self.ham,
            self.spam
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_outcome() {
        // Two spam caught, one missed, one ham flagged, three passed.
        let scored = [
            (0.95, true),
            (0.9, true),
            (0.2, true),
            (0.91, false),
            (0.1, false),
            (0.0, false),
            (0.89, false),
        ];
        let evaluation = Evaluation::from_scores(scored, 0.9);
        assert_eq!(evaluation.precision, 2.0 / 3.0);
        assert_eq!(evaluation.recall, 2.0 / 3.0);
        assert!((evaluation.f1 - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(evaluation.accuracy, 5.0 / 7.0);
        assert_eq!(evaluation.ham_blocked, 0.25);
        assert_eq!((evaluation.ham, evaluation.spam), (4, 3));
    }

    #[test]
    fn undefined_ratios_are_zero() {
        let nothing_flagged = Evaluation::from_scores([(0.1, true), (0.2, false)], 0.5);
        assert_eq!((nothing_flagged.precision, nothing_flagged.f1), (0.0, 0.0));
        let nothing = Evaluation::from_scores(std::iter::empty(), 0.5);
        assert_eq!(
            (
                nothing.accuracy,
                nothing.ham_blocked,
                nothing.ham,
                nothing.spam
            ),
            (0.0, 0.0, 0, 0)
        );
    }

    #[test]
    fn evaluate_scores_with_the_model() {
        let model = Model::train(std::iter::empty());
        let evaluation = evaluate(&model, [("anything", true), ("else", false)], 0.5);
        assert_eq!((evaluation.recall, evaluation.ham_blocked), (1.0, 1.0));
    }
}
