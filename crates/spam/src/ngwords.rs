//! NG words (the words a room or the whole site refuses), matched on normalised text, with an
//! allow-list of innocent compounds that happen to contain one.
//!
//! Matching is by substring on [`crate::normalize`]d text, because Japanese has no spaces to
//! find word edges by and because a spammer's 「ナ イ フ」 must match 「ナイフ」. Substrings
//! over-match (「ディナーナイフ」 contains 「ナイフ」), which is what the allow-list is for: an
//! occurrence of an NG word that lies wholly inside an occurrence of an allowed compound is
//! not a hit, but any other occurrence in the same text still is.

use crate::normalize::{is_word_char, normalize};

/// A set of NG words and allowed compounds, normalised once when built.
#[derive(Debug, Clone, Default)]
pub struct NgWords {
    /// `(match form, as given)`, in the order given; words whose match form is empty are left
    /// out, since an empty word would match every text.
    words: Vec<(String, String)>,
    /// Match forms of the allowed compounds, none empty.
    allowed: Vec<String>,
}

impl NgWords {
    /// Builds the set. `words` are the NG words; `allowed` are innocent compounds that contain
    /// one (「ディナーナイフ」 contains 「ナイフ」). Both are given raw and normalised here, and
    /// punctuation at their edges is dropped (「ナイフ！」 matches as 「ないふ」); entries left
    /// empty (blank ones) are ignored.
    pub fn new<S: AsRef<str>>(words: &[S], allowed: &[S]) -> Self {
        let words = words
            .iter()
            .map(|word| (match_form(word.as_ref()), word.as_ref().to_owned()))
            .filter(|(form, _)| !form.is_empty())
            .collect();
        let allowed = allowed
            .iter()
            .map(|compound| match_form(compound.as_ref()))
            .filter(|form| !form.is_empty())
            .collect();
        Self { words, allowed }
    }

    /// The first NG word, in the order they were given and spelled as given, that occurs in
    /// `normalized` (the output of [`normalize`]) outside every allowed compound; `None` when
    /// the text is clean.
    pub fn find(&self, normalized: &str) -> Option<&str> {
        // The allowed spans are only worth finding once some NG word is in the text at all,
        // which for most comments it is not.
        let mut allowed_spans: Option<Vec<(usize, usize)>> = None;
        for (word, given) in &self.words {
            if !normalized.contains(word.as_str()) {
                continue;
            }
            let spans = allowed_spans.get_or_insert_with(|| self.allowed_spans(normalized));
            let outside_every_compound = occurrences(normalized, word)
                .any(|(start, end)| !spans.iter().any(|&(from, to)| from <= start && end <= to));
            if outside_every_compound {
                return Some(given);
            }
        }
        None
    }

    /// True when there are no NG words (allowed compounds alone refuse nothing).
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Byte spans of every occurrence of every allowed compound in `text`.
    fn allowed_spans(&self, text: &str) -> Vec<(usize, usize)> {
        self.allowed
            .iter()
            .flat_map(|compound| occurrences(text, compound))
            .collect()
    }
}

/// What an entry is matched as: normalised, without the separators at its edges (which a text
/// drops when the entry sits between letters), or, for an entry of symbols only (「★★」), the
/// normalised symbols without surrounding whitespace.
fn match_form(entry: &str) -> String {
    let normalized = normalize(entry);
    let letters = normalized.trim_matches(|c: char| !is_word_char(c));
    if letters.is_empty() {
        normalized.trim()
    } else {
        letters
    }
    .to_owned()
}

/// Byte spans `(start, end)` of every occurrence of `needle` in `haystack`, overlapping ones
/// included (「ないふ」 twice in 「ないふないふ」, and both 「ああ」 in 「あああ」).
fn occurrences<'a>(
    haystack: &'a str,
    needle: &'a str,
) -> impl Iterator<Item = (usize, usize)> + 'a {
    let mut from = 0;
    std::iter::from_fn(move || {
        let rest = haystack.get(from..)?;
        let start = from + rest.find(needle)?;
        // The next search starts one character on, so overlapping occurrences count too.
        let first_char_len = haystack
            .get(start..)?
            .chars()
            .next()
            .map_or(1, char::len_utf8);
        from = start + first_char_len;
        Some((start, start + needle.len()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_occurrences_are_all_found() {
        let spans: Vec<_> = occurrences("あああ", "ああ").collect();
        assert_eq!(spans, vec![(0, 6), (3, 9)]);
    }

    #[test]
    fn words_that_normalise_to_nothing_are_ignored() {
        let words = NgWords::new(&["  ", "\u{200B}", "\u{3000}"], &[]);
        assert!(words.is_empty());
        assert_eq!(words.find("anything"), None);
    }

    #[test]
    fn edge_punctuation_of_an_entry_is_dropped_but_symbols_alone_are_kept() {
        let words = NgWords::new(&["ナイフ！", " ★★ "], &[]);
        assert_eq!(words.find(&normalize("ナイフすごい")), Some("ナイフ！"));
        assert_eq!(words.find(&normalize("★★★")), Some(" ★★ "));
    }

    #[test]
    fn the_first_word_in_the_given_order_is_reported_as_given() {
        let words = NgWords::new(&["ＳＣＡＭ", "ナイフ"], &[]);
        assert_eq!(words.find(&normalize("ナイフでscam")), Some("ＳＣＡＭ"));
    }
}
