//! The project's own labelled live-comment corpus and the default model trained on it.
//!
//! `corpus/live-comments.tsv` is written by `corpus/generate.py` (deterministic: run it again
//! to regenerate, and commit both): one comment a line, `ham` or `spam`, a tab, the text.
//! Lines starting with `#` are comments. It is embedded, so the default model needs no file
//! at run time.

use std::sync::OnceLock;

use crate::model::Model;

const CORPUS: &str = include_str!("../corpus/live-comments.tsv");

/// A comment that the default model holds for review (its score lies in
/// [`crate::HOLD`]..[`crate::BLOCK`]; 0.82 when written): a self-promotion without a link.
/// Tests of the live comment flow use it to exercise the review queue.
pub const BORDERLINE_EXAMPLE: &str = "check out my channel too";

/// The labelled examples `(text, is_spam)` of the embedded corpus, in file order.
pub fn corpus() -> Vec<(&'static str, bool)> {
    CORPUS.lines().filter_map(parse_line).collect()
}

/// One `label<TAB>text` line; `None` for comments, blank lines and unknown labels.
fn parse_line(line: &str) -> Option<(&str, bool)> {
    if line.starts_with('#') {
        return None;
    }
    let (label, text) = line.split_once('\t')?;
    match label {
        "spam" => Some((text, true)),
        "ham" => Some((text, false)),
        _ => None,
    }
}

/// The model trained on [`corpus()`], built on first use and kept for the process.
pub fn default_model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| Model::train(corpus()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_of_the_corpus_parses() {
        let lines = CORPUS
            .lines()
            .filter(|line| !line.starts_with('#') && !line.is_empty())
            .count();
        assert_eq!(corpus().len(), lines);
        assert!(lines >= 1_500, "{lines}");
    }
}
