//! Text normalisation shared by every check, so that one spelling of a word matches all the
//! ways a viewer (or a spammer dodging a filter) can type it.
//!
//! 「ナ イ フ」, 「ﾅｲﾌ」, 「ないふ」, 「ナ・イ・フ」 and 「ナーイーフ」 all become 「ないふ」; "S C A M",
//! "ｓｃａｍ" and "s-c-a-m" all become "scam". The steps, in order:
//!
//! 1. NFKC, which turns full-width Latin and half-width katakana into their usual forms and
//!    composes 「ﾊﾞ」 into 「バ」;
//! 2. lower case (`char::to_lowercase`);
//! 3. katakana to hiragana, so the two scripts are one;
//! 4. every prolonged sound mark, tilde, wave dash, hyphen, dash and minus to one mark, 「ー」;
//! 5. invisible format characters (zero-width spaces and joiners, soft hyphens, variation
//!    selectors) dropped everywhere, since nobody can see them but a filter can;
//! 6. every run of spaces, punctuation, symbols and marks that has a letter or digit on both
//!    sides dropped. Runs at the start or the end stay, so that 「ーーーーーーー」 or "!!!!!!"
//!    are still there for the flood check.
//!
//! The prolonged mark counts as a separator in step 6 (although Unicode calls it a letter):
//! that is what lets 「ナーイーフ」 and "s-c-a-m" match. The price is that 「ラーメン」 and
//! 「ラメン」 read the same, which is harmless for a spam check.
//!
//! Dropping spaces between words also joins English words ("it's cam" reads "itscam", which
//! contains "scam"); the allow-list of [`crate::NgWords`] is the answer to such compounds.

use unicode_normalization::UnicodeNormalization;

/// The one mark that prolonged sound marks and hyphen or dash variants become.
const LONG_MARK: char = 'ー';

/// Normalises `text` for matching: NFKC, lower case, katakana folded to hiragana, prolonged
/// marks and dashes unified to 「ー」, invisible characters dropped, and spaces, punctuation
/// and symbols between letters removed (see the module documentation for why each step).
///
/// Idempotent: `normalize(&normalize(t)) == normalize(t)`, so a caller may normalise once and
/// hand the result to every check.
pub fn normalize(text: &str) -> String {
    let folded: String = text
        .nfkc()
        .flat_map(char::to_lowercase)
        .filter(|&c| !is_invisible(c))
        .map(fold_char)
        .collect();
    // Lower-casing and folding can put a base letter next to a combining mark that NFKC
    // would compose (and removing a separator can too), so compose once more at the end.
    let joined = drop_inner_separators(&folded.nfkc().collect::<String>());
    joined.nfkc().collect()
}

/// True for letters and digits of any script: what step 6 keeps between separators.
pub(crate) fn is_word_char(c: char) -> bool {
    c != LONG_MARK && c.is_alphanumeric()
}

/// Katakana to hiragana, and the prolonged-mark and dash family to [`LONG_MARK`].
fn fold_char(c: char) -> char {
    match c {
        // ァ..ヶ sit exactly 0x60 above ぁ..ゖ; ヽ ヾ likewise above ゝ ゞ.
        '\u{30A1}'..='\u{30F6}' | '\u{30FD}' | '\u{30FE}' => {
            char::from_u32(u32::from(c) - 0x60).unwrap_or(c)
        }
        c if is_long_mark_or_dash(c) => LONG_MARK,
        c => c,
    }
}

/// Prolonged sound marks, tildes and wave dashes, hyphens, dashes and minus signs, and the
/// box-drawing bars that 2ch-style comments use as long marks (「キタ━━━」). NFKC has already
/// turned their full- and half-width forms into one of these.
fn is_long_mark_or_dash(c: char) -> bool {
    matches!(
        c,
        '-' | '~' | '\u{2010}'
            ..='\u{2015}' // ‐ ‑ ‒ – — ―
            | '\u{2043}' // ⁃
            | '\u{2053}' // ⁓
            | '\u{2212}' // −
            | '\u{223C}' // ∼
            | '\u{2500}' | '\u{2501}' // ─ ━
            | '\u{2E3A}' | '\u{2E3B}' // ⸺ ⸻
            | '\u{301C}' // 〜
            | '\u{3030}' // 〰
            | '\u{30FC}' // ー
    )
}

/// Characters that render as nothing: zero-width spaces and joiners, direction marks, the
/// soft hyphen, the word joiner, the byte-order mark and variation selectors.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}' | '\u{1160}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// Drops every run of non-word characters that has a word character on both sides.
fn drop_inner_separators(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // Separators seen since the last word character; flushed only if the text ends first.
    let mut pending = String::new();
    let mut seen_word = false;
    for c in text.chars() {
        if is_word_char(c) {
            if !seen_word {
                out.push_str(&pending);
            }
            pending.clear();
            seen_word = true;
            out.push(c);
        } else {
            pending.push(c);
        }
    }
    out.push_str(&pending);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_the_ways_of_writing_a_japanese_word() {
        for variant in [
            "ナイフ",
            "ナ イ フ",
            "ﾅｲﾌ",
            "ないふ",
            "ナ・イ・フ",
            "ナーイーフ",
            "ナ\u{200B}イフ",
        ] {
            assert_eq!(normalize(variant), "ないふ", "{variant}");
        }
    }

    #[test]
    fn folds_the_ways_of_writing_a_latin_word() {
        for variant in [
            "scam",
            "S C A M",
            "ｓｃａｍ",
            "s-c-a-m",
            "S.C.A.M",
            "s–c—a_m",
            "ＳＣＡＭ",
        ] {
            assert_eq!(normalize(variant), "scam", "{variant}");
        }
    }

    #[test]
    fn keeps_separators_at_the_edges() {
        assert_eq!(normalize("ーーーーーーー"), "ーーーーーーー");
        assert_eq!(normalize("〜〜〜~~~ｰｰｰ"), "ーーーーーーーーー");
        assert_eq!(normalize("!!!!!!"), "!!!!!!");
        assert_eq!(normalize("最高！！！"), "最高!!!");
        assert_eq!(normalize("  こんばんは  "), "  こんばんは  ");
        // The half-width ﾟ is a combining mark after NFKC, so everything after 「きた」 is
        // one run of separators that ends the text.
        assert_eq!(
            normalize("キタ━━━(ﾟ∀ﾟ)━━━!!"),
            "きたーーー(\u{309A}∀\u{309A})ーーー!!"
        );
    }

    #[test]
    fn composes_half_width_voiced_kana() {
        assert_eq!(normalize("ﾊﾞｲﾄ"), "ばいと");
        assert_eq!(normalize("ヴ"), "ゔ");
    }
}
