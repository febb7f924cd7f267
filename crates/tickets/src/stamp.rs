//! Values kept in `coord` that name who holds something and until when:
//! `"<who> <until ms>"` (an admission, an access token, a seat lock). The stored time
//! decides, not only the store's own time to live, so every node agrees on the clock.

use matsuri_core::clock::Millis;

/// `who` holds it until `until`.
pub(crate) fn stamp(who: &str, until: Millis) -> String {
    format!("{who} {until}")
}

/// Who holds it and until when, whether or not that has passed.
pub(crate) fn read(text: &str) -> Option<(&str, Millis)> {
    let (who, until) = text.split_once(' ')?;
    Some((who, until.parse().ok()?))
}

/// Who holds it and until when, if that is still after `now`.
pub(crate) fn live(text: &str, now: Millis) -> Option<(&str, Millis)> {
    read(text).filter(|(_, until)| *until > now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_read_back_and_end_at_their_time() {
        let value = stamp("res-1", 1_000);
        assert_eq!(read(&value), Some(("res-1", 1_000)));
        assert_eq!(live(&value, 999), Some(("res-1", 1_000)));
        assert_eq!(live(&value, 1_000), None);
        assert_eq!(read("tok 123"), Some(("tok", 123)));
        assert_eq!(read("garbled"), None);
        assert_eq!(read("tok 12x"), None);
    }
}
