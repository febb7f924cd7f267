//! Floods and near-duplicates: the two repeat checks that need no history store.
//!
//! [`is_flood`] looks at one comment (a wall of one character); [`similarity`] compares two,
//! so the caller, which keeps each user's last few comments, can refuse a resend that only
//! changed a little punctuation or case.
//!
//! Clapping is not a flood. On Niconico and YouTube Live 「8888」 is applause (8 is read
//! はち, which sounds like the パチパチ of clapping), and a whole room types it after a song; a row of eights only counts as a flood from
//! [`CLAP_FLOOD_CHARS`] on, twice the run that makes any other character one.

use rustc_hash::FxHashMap;

/// A run of this many of one character is a flood (「wwwwwwwwww」, "!!!!!!!!!!").
pub const FLOOD_RUN: usize = 10;
/// A text at least this long ...
pub const FLOOD_MIN_CHARS: usize = 6;
/// ... in which one character makes up at least this share is a flood (「ーーーーーーー」,
/// "!!!!!!", 「あああああ!」), so a short laugh like 「www」 or "lol" passes.
pub const FLOOD_SHARE: f64 = 0.8;
/// Eights (applause) are a flood only in a run of this many or a text this long.
pub const CLAP_FLOOD_CHARS: usize = 20;

/// The applause character, after normalisation (full-width 「８」 becomes this).
const CLAP: char = '8';

/// Near-duplicates score at least this in [`similarity`]: "BUY FOLLOWERS at example.com!!"
/// and "buy followers at example.com" score 0.96, 「最高」 and 「最高すぎ」 0.5, "this song is
/// amazing" and "this song is so good" 0.58. Claps of nearly the same length score high too
/// (「8888888」 and 「88888888」 0.92), so a caller may want to let applause repeat.
pub const NEAR_DUPLICATE: f64 = 0.8;

/// True when `normalized` (the output of [`crate::normalize`]) is mostly one character: a run
/// of at least [`FLOOD_RUN`] of it, or a text of at least [`FLOOD_MIN_CHARS`] characters of
/// which one makes up at least [`FLOOD_SHARE`]. For 「8」, the applause, both limits are
/// raised to [`CLAP_FLOOD_CHARS`].
pub fn is_flood(normalized: &str) -> bool {
    // Per character: how often it occurs, and its longest run.
    let mut seen: FxHashMap<char, (usize, usize)> = FxHashMap::default();
    let mut length = 0usize;
    let mut previous = None;
    let mut run = 0usize;
    for c in normalized.chars() {
        length += 1;
        run = if previous == Some(c) { run + 1 } else { 1 };
        previous = Some(c);
        let (total, longest) = seen.entry(c).or_default();
        *total += 1;
        *longest = (*longest).max(run);
    }
    seen.iter().any(|(&c, &(total, longest))| {
        let (run_limit, length_limit) = if c == CLAP {
            (CLAP_FLOOD_CHARS, CLAP_FLOOD_CHARS)
        } else {
            (FLOOD_RUN, FLOOD_MIN_CHARS)
        };
        let dominant = length >= length_limit && total as f64 >= FLOOD_SHARE * length as f64;
        longest >= run_limit || dominant
    })
}

/// Similarity of two normalised texts in `0.0..=1.0`: the Dice coefficient of their
/// character-bigram multisets (single characters for texts shorter than two). Equal texts
/// score 1, texts sharing no bigram 0. Bigrams rather than whole words because Japanese
/// has no spaces, and multisets so that 「wwww」 and 「wwwwwwww」 are not the same.
pub fn similarity(a: &str, b: &str) -> f64 {
    if a == b {
        return 1.0;
    }
    let width = if a.chars().count() < 2 || b.chars().count() < 2 {
        1
    } else {
        2
    };
    let grams_a = grams(a, width);
    let grams_b = grams(b, width);
    if grams_a.is_empty() && grams_b.is_empty() {
        return 0.0;
    }
    // Both sorted: the multiset intersection is one merge.
    let (mut i, mut j, mut shared) = (0, 0, 0_usize);
    while i < grams_a.len() && j < grams_b.len() {
        match grams_a[i].cmp(&grams_b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                shared += 1;
                i += 1;
                j += 1;
            }
        }
    }
    2.0 * shared as f64 / (grams_a.len() + grams_b.len()) as f64
}

/// The character `width`-grams (1 or 2) of `text`, each as one number, sorted.
fn grams(text: &str, width: usize) -> Vec<u64> {
    let chars: Vec<u64> = text.chars().map(u64::from).collect();
    let mut grams: Vec<u64> = if width == 1 {
        chars
    } else {
        chars
            .windows(2)
            .map(|pair| pair[0] << 32 | pair[1])
            .collect()
    };
    grams.sort_unstable();
    grams
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize;

    #[test]
    fn walls_of_one_character_are_floods() {
        for text in [
            "wwwwwwwwwwww",
            "ーーーーーーー",
            "!!!!!!!!!!!!",
            "あああああああああああ草",
            "？？？？？？",
        ] {
            assert!(is_flood(&normalize(text)), "{text}");
        }
    }

    #[test]
    fn laughs_cheers_and_applause_are_not_floods() {
        for text in [
            "www",
            "ｗｗｗｗｗ",
            "lol",
            "草",
            "最高！！！",
            "きたあああああ",
            "8888888",
            "888888888888",
            "８８８８８８８８８８８８８８８８８８８",
            "",
        ] {
            assert!(!is_flood(&normalize(text)), "{text}");
        }
    }

    #[test]
    fn long_applause_is_a_flood() {
        assert!(is_flood(&"8".repeat(CLAP_FLOOD_CHARS)));
    }

    #[test]
    fn a_long_run_inside_a_sentence_is_a_flood() {
        assert!(is_flood(&normalize("見て見てwwwwwwwwwwwwwwwwww")));
    }

    #[test]
    fn near_duplicates_and_unrelated_texts() {
        let a = normalize("BUY FOLLOWERS at example.com!!");
        let b = normalize("buy followers at example.com");
        assert!(
            similarity(&a, &b) >= NEAR_DUPLICATE,
            "{}",
            similarity(&a, &b)
        );
        let c = normalize("この曲ほんとに好き");
        assert!(similarity(&a, &c) < 0.3);
        assert!(similarity(&normalize("最高！"), &normalize("きたー")) < 0.3);
        assert_eq!(similarity("", ""), 1.0);
        assert_eq!(similarity("a", ""), 0.0);
    }

    #[test]
    fn similarity_is_symmetric_and_bounded() {
        let texts = ["www", "wwwwwwww", "ないふ", "scam", "a", "", "同じ同じ"];
        for a in texts {
            for b in texts {
                let score = similarity(a, b);
                assert!((0.0..=1.0).contains(&score));
                assert_eq!(score, similarity(b, a));
            }
        }
    }
}
