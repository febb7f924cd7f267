//! Text that clients send: a line of printable text and a mail address. Each rule is kept
//! beside the pattern that says the same in the OpenAPI document, so that what the
//! document allows the server accepts and what it refuses the document forbids. A string
//! schema declares `format = "line"` or `format = "email-address"` and the server's
//! contract pass (`crates/server/src/contract.rs`) gives it the pattern.

use crate::FieldError;

/// The `format` of a string schema that holds a [`line`].
pub const LINE_FORMAT: &str = "line";
/// The `format` of a string schema that holds a [`text`].
pub const TEXT_FORMAT: &str = "text";
/// The `format` of a string schema that holds an [`email`].
pub const EMAIL_FORMAT: &str = "email-address";

/// A line: no control character (C0, DEL, C1) and at least one character that is neither
/// a control nor white space (Rust's `char::is_whitespace`).
pub const LINE_PATTERN: &str = concat!(
    "^[^\u{0}-\u{1f}\u{7f}-\u{9f}]*",
    "[^\u{0}-\u{20}\u{7f}-\u{a0}\u{1680}\u{2000}-\u{200a}\u{2028}\u{2029}\u{202f}\u{205f}\u{3000}]",
    "[^\u{0}-\u{1f}\u{7f}-\u{9f}]*$"
);

/// A text: lines as [`LINE_PATTERN`] has them, with tabs and line breaks between.
pub const TEXT_PATTERN: &str = concat!(
    "^[^\u{0}-\u{8}\u{b}\u{c}\u{e}-\u{1f}\u{7f}-\u{9f}]*",
    "[^\u{0}-\u{20}\u{7f}-\u{a0}\u{1680}\u{2000}-\u{200a}\u{2028}\u{2029}\u{202f}\u{205f}\u{3000}]",
    "[^\u{0}-\u{8}\u{b}\u{c}\u{e}-\u{1f}\u{7f}-\u{9f}]*$"
);

/// A mail address: a local part and a domain around one `@`, neither empty, the domain
/// neither starting nor ending with a dot, no white space or control character inside;
/// white space around it is allowed (and dropped).
pub const EMAIL_PATTERN: &str = concat!(
    "^[\u{9}-\u{d}\u{20}\u{85}\u{a0}\u{1680}\u{2000}-\u{200a}\u{2028}\u{2029}\u{202f}\u{205f}\u{3000}]*",
    "[^@\u{0}-\u{20}\u{7f}-\u{a0}\u{1680}\u{2000}-\u{200a}\u{2028}\u{2029}\u{202f}\u{205f}\u{3000}]+",
    "@[^@.\u{0}-\u{20}\u{7f}-\u{a0}\u{1680}\u{2000}-\u{200a}\u{2028}\u{2029}\u{202f}\u{205f}\u{3000}]",
    "(?:[^@\u{0}-\u{20}\u{7f}-\u{a0}\u{1680}\u{2000}-\u{200a}\u{2028}\u{2029}\u{202f}\u{205f}\u{3000}]*",
    "[^@.\u{0}-\u{20}\u{7f}-\u{a0}\u{1680}\u{2000}-\u{200a}\u{2028}\u{2029}\u{202f}\u{205f}\u{3000}])?",
    "[\u{9}-\u{d}\u{20}\u{85}\u{a0}\u{1680}\u{2000}-\u{200a}\u{2028}\u{2029}\u{202f}\u{205f}\u{3000}]*$"
);

/// The longest mail address, in characters.
pub const MAX_EMAIL: usize = 254;

/// Checks a line of at most `max` characters as sent (white space around it included, as
/// the document's `maxLength` counts) and returns it without the white space around it.
pub fn line(field: &str, value: &str, max: usize) -> Result<String, FieldError> {
    let trimmed = value.trim();
    if trimmed.is_empty() || value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            format!("must be 1 to {max} printable characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// Checks a text of at most `max` characters as sent, which may span lines (tabs and
/// line breaks are its only controls), and returns it without the white space around it.
pub fn text(field: &str, value: &str, max: usize) -> Result<String, FieldError> {
    let trimmed = value.trim();
    let stray_control = value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'));
    if trimmed.is_empty() || value.chars().count() > max || stray_control {
        return Err(FieldError::new(
            field,
            format!(
                "must be 1 to {max} characters, something visible among them, and no control character but tabs and line breaks"
            ),
        ));
    }
    Ok(trimmed.to_owned())
}

/// Checks a mail address (at most [`MAX_EMAIL`] characters as sent) and returns it
/// without the white space around it, in lower case.
pub fn email(value: &str) -> Option<String> {
    let sent = value.chars().count();
    let value = value.trim();
    let (local, domain) = value.split_once('@')?;
    let plausible = sent <= MAX_EMAIL
        && !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !value.chars().any(|c| c.is_whitespace() || c.is_control());
    plausible.then(|| value.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_needs_something_visible_and_no_controls() {
        assert_eq!(line("name", "  Hanako ", 9).ok().as_deref(), Some("Hanako"));
        assert!(line("name", " \u{3000} ", 9).is_err());
        assert!(line("name", "a\u{85}b", 9).is_err());
        assert!(line("name", "a\tb", 9).is_err());
        // The limit counts what was sent, as the document's maxLength does.
        assert!(line("name", " abc", 3).is_err());
        assert!(line("name", "祭り", 2).is_ok());
    }

    #[test]
    fn a_text_may_span_lines() {
        assert_eq!(
            text("text", " one\ntwo\t ", 20).ok().as_deref(),
            Some("one\ntwo")
        );
        assert!(text("text", "\n\t ", 20).is_err());
        assert!(text("text", "a\u{0}b", 20).is_err());
        assert!(text("text", "a\u{85}b", 20).is_err());
        assert!(text("text", &"あ".repeat(21), 20).is_err());
    }

    #[test]
    fn mail_addresses() {
        assert_eq!(email("Fan@Example.COM").as_deref(), Some("fan@example.com"));
        assert_eq!(
            email(" fan@example.com\n").as_deref(),
            Some("fan@example.com")
        );
        for bad in [
            "fan",
            "@example.com",
            "fan@",
            "fan@.example.com",
            "fan@example.com.",
            "fan@a@b",
            "fan@exa mple.com",
            "fan@exa\u{3000}mple.com",
        ] {
            assert_eq!(email(bad), None, "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(MAX_EMAIL));
        assert_eq!(email(&long), None);
        let padded = format!("{}@example.com ", "a".repeat(MAX_EMAIL - 12));
        assert_eq!(email(&padded), None, "the limit counts what was sent");
    }

    #[test]
    fn the_patterns_name_the_white_space_rust_knows() {
        // The patterns exclude U+0020, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029,
        // U+202F, U+205F and U+3000 beside the controls: every white space character.
        let named: Vec<char> = [' ', '\u{a0}', '\u{1680}']
            .into_iter()
            .chain('\u{2000}'..='\u{200a}')
            .chain(['\u{2028}', '\u{2029}', '\u{202f}', '\u{205f}', '\u{3000}'])
            .collect();
        let rust: Vec<char> = (0..=0x10ffff_u32)
            .filter_map(char::from_u32)
            .filter(|c| c.is_whitespace() && !c.is_control())
            .collect();
        assert_eq!(named, rust);
        for c in named {
            assert!(EMAIL_PATTERN.contains(c) || ('\u{2001}'..='\u{2009}').contains(&c));
        }
    }
}
