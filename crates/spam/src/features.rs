//! What the classifier sees of a text: hashed character n-grams of the normalised text, Latin
//! word tokens, and one signal, "this text is one short unit repeated".
//!
//! Character n-grams need no tokenizer, so Japanese and English are handled alike; word tokens
//! add what n-grams lose when [`crate::normalize`] joins English words. Each feature is a
//! 64-bit FNV-1a hash of a kind tag and its text: FNV because its output is fixed by its
//! definition (a stored model must read the same next year, which `std`'s and `rustc-hash`'s
//! hashers do not promise), and 64 bits so that collisions are negligible.
//!
//! A text's features are a set (each counted once, however often it occurs), and only the
//! first [`MAX_TEXT_CHARS`] characters are read, so a 100 KB message costs no more than a long
//! one: at most three n-grams a character plus its word tokens.
//!
//! Two more signals were tried and measured without effect on either corpus (a link; a run
//! of four or more digits): the n-grams 「://」, 「.co」 and 「000」 already carry them.

use unicode_normalization::UnicodeNormalization;

use crate::normalize::normalize;

/// Shortest character n-gram. Single characters matter in Japanese (「草」, 「神」).
const MIN_GRAM: usize = 1;
/// Longest character n-gram. 2..=4 and 1..=4 were measured too, within noise of 1..=3 on both
/// corpora, with larger models.
const MAX_GRAM: usize = 3;
/// Only the first this many characters of a text are looked at.
const MAX_TEXT_CHARS: usize = 4_000;

/// Word tokens outside this length are noise (single letters, base64 runs).
const TOKEN_CHARS: std::ops::RangeInclusive<usize> = 2..=24;
/// The longest unit [`is_repetition`] looks for, in characters.
const REPEATED_UNIT_CHARS: usize = 8;
/// The shortest repeated stretch that counts.
const REPEATED_CHARS: usize = 10;
/// The share of the text the repeated stretch must make up.
const REPEATED_SHARE: f64 = 0.8;
/// Marks the start and the end of the text inside n-grams, so "starts with http" is a feature.
const TEXT_START: char = '\u{2}';
const TEXT_END: char = '\u{3}';

/// Kind tags, hashed before a feature's text so that kinds never collide with each other.
const KIND_GRAM: u8 = b'g';
const KIND_WORD: u8 = b'w';
const KIND_SIGNAL: u8 = b's';

/// The sorted, de-duplicated feature hashes of `text` (raw or already normalised: the two
/// give the same character n-grams, since normalisation is idempotent).
pub(crate) fn features(text: &str) -> Vec<u64> {
    let text = first_chars(text, MAX_TEXT_CHARS);
    let mut found = Vec::with_capacity(text.len() * MAX_GRAM + 8);
    let normalized = normalize(text);
    push_char_grams(&normalized, &mut found);
    push_words(&lower_nfkc(text), &mut found);
    if is_repetition(&normalized) {
        found.push(hash(KIND_SIGNAL, b"repeated"));
    }
    found.sort_unstable();
    found.dedup();
    found
}

/// The first `limit` characters of `text`.
fn first_chars(text: &str, limit: usize) -> &str {
    match text.char_indices().nth(limit) {
        Some((end, _)) => text.get(..end).unwrap_or(text),
        None => text,
    }
}

/// Character n-grams of `normalized` with start and end marks, MIN_GRAM..=MAX_GRAM long.
fn push_char_grams(normalized: &str, found: &mut Vec<u64>) {
    let mut marked = String::with_capacity(normalized.len() + 2);
    marked.push(TEXT_START);
    marked.push_str(normalized);
    marked.push(TEXT_END);
    let bounds: Vec<usize> = marked
        .char_indices()
        .map(|(index, _)| index)
        .chain(std::iter::once(marked.len()))
        .collect();
    for (position, &from) in bounds.iter().enumerate() {
        for width in MIN_GRAM..=MAX_GRAM {
            let Some(gram) = bounds
                .get(position + width)
                .and_then(|&to| marked.get(from..to))
            else {
                break;
            };
            found.push(hash(KIND_GRAM, gram.as_bytes()));
        }
    }
}

/// NFKC and lower case only: the text with its spaces and punctuation, for word tokens.
fn lower_nfkc(text: &str) -> String {
    text.nfkc().flat_map(char::to_lowercase).collect()
}

/// Latin word tokens of `light` (see [`lower_nfkc`]): runs of ASCII letters and digits, so
/// that "FREE", "Free" and "ｆｒｅｅ" are one token.
fn push_words(light: &str, found: &mut Vec<u64>) {
    for token in light.split(|c: char| !c.is_ascii_alphanumeric()) {
        if TOKEN_CHARS.contains(&token.len()) {
            found.push(hash(KIND_WORD, token.as_bytes()));
        }
    }
}

/// True when most of the normalised text is one short unit said over and over (「wwwwwwwwww」,
/// "buybuybuybuy", 「見て見て見て見て見て」): a stretch of at least [`REPEATED_CHARS`]
/// characters, and of at least four units, that makes up [`REPEATED_SHARE`] of the text.
/// Without it the model could only learn that "hello" is spam from "hello hello hello ...".
fn is_repetition(normalized: &str) -> bool {
    let chars: Vec<char> = normalized.chars().collect();
    (1..=REPEATED_UNIT_CHARS).any(|period| {
        let mut longest = 0;
        let mut stretch = 0;
        for (current, later) in chars.iter().zip(chars.iter().skip(period)) {
            stretch = if current == later { stretch + 1 } else { 0 };
            longest = longest.max(stretch);
        }
        let covered = longest + period;
        longest > 0
            && covered >= REPEATED_CHARS.max(4 * period)
            && covered as f64 >= REPEATED_SHARE * chars.len() as f64
    })
}

/// FNV-1a, 64 bits, over the kind tag and then the bytes.
pub(crate) fn hash(kind: u8, bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    std::iter::once(&kind)
        .chain(bytes)
        .fold(OFFSET, |state, &byte| {
            (state ^ u64::from(byte)).wrapping_mul(PRIME)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_its_published_test_vectors() {
        // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c; here the kind tag is the first byte.
        assert_eq!(hash(b'a', b""), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(hash(b'f', b"oobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn repetitions_of_short_units_are_seen() {
        for text in [
            "wwwwwwwwww",
            "buybuybuybuy",
            "見て見て見て見て見て",
            "followmefollowmefollowmefollowme!",
        ] {
            assert!(is_repetition(text), "{text}");
        }
        for text in [
            "wwwww",
            "8888888",
            "草草草",
            "thissongisamazing",
            "ああああいいいいうう",
            "",
        ] {
            assert!(!is_repetition(text), "{text}");
        }
    }

    #[test]
    fn features_are_sorted_unique_and_read_from_the_start_only() {
        let long = format!("{}{}", "spam and eggs ".repeat(1_000), "tail");
        let features = features(&long);
        assert!(features.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(!features.is_empty());
        assert!(!features.contains(&hash(KIND_WORD, b"tail")));
        assert!(features.contains(&hash(KIND_WORD, b"eggs")));
    }
}
