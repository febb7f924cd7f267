//! What we keep from an upload's EXIF before the pixels are re-encoded without it: the
//! orientation (so the variants come out upright) and when the photo was taken. Everything
//! else, GPS above all, is dropped with the original's metadata. Broken EXIF never refuses
//! an image: it only means orientation 1 and no time.

use exif::{In, Reader, Tag, Value};
use time::{Date, Month, PrimitiveDateTime, Time};

/// What the pipeline reads from EXIF.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Exif {
    /// 1–8 as EXIF defines it; 1 when absent or invalid.
    pub orientation: u8,
    /// DateTimeOriginal, else DateTime; local time as the camera had it (no zone).
    pub taken_at: Option<PrimitiveDateTime>,
}

/// Reads a raw EXIF block: a TIFF header and its IFDs, with or without the `Exif\0\0`
/// prefix of a JPEG APP1 segment.
pub(crate) fn read_exif(raw: Option<&[u8]>) -> Exif {
    let mut found = Exif {
        orientation: 1,
        taken_at: None,
    };
    let Some(raw) = raw else {
        return found;
    };
    let raw = raw.strip_prefix(b"Exif\0\0").unwrap_or(raw);
    let parsed = Reader::new()
        .continue_on_error(true)
        .read_raw(raw.to_vec())
        .or_else(|error| error.distill_partial_result(|_| {}));
    let Ok(exif) = parsed else {
        return found;
    };
    if let Some(value) = exif
        .get_field(Tag::Orientation, In::PRIMARY)
        .and_then(|field| field.value.get_uint(0))
        && (1..=8).contains(&value)
    {
        found.orientation = value as u8;
    }
    found.taken_at = [Tag::DateTimeOriginal, Tag::DateTime]
        .into_iter()
        .find_map(|tag| match &exif.get_field(tag, In::PRIMARY)?.value {
            Value::Ascii(strings) => parse_exif_time(strings.first()?),
            _ => None,
        });
    found
}

/// `YYYY:MM:DD HH:MM:SS` → a date and time; `None` for blanks and impossible dates.
fn parse_exif_time(ascii: &[u8]) -> Option<PrimitiveDateTime> {
    let parsed = exif::DateTime::from_ascii(ascii).ok()?;
    let month = Month::try_from(parsed.month).ok()?;
    let date = Date::from_calendar_date(i32::from(parsed.year), month, parsed.day).ok()?;
    let time = Time::from_hms(parsed.hour, parsed.minute, parsed.second).ok()?;
    Some(PrimitiveDateTime::new(date, time))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    /// A little-endian TIFF with IFD0 holding `entries` (tag, type, count, value or offset)
    /// followed by `tail` (the data the offsets point into, which starts at `tail_at`).
    fn tiff(entries: &[(u16, u16, u32, u32)], tail: &[u8]) -> Vec<u8> {
        let mut out = b"II*\0\x08\0\0\0".to_vec();
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        for &(tag, kind, count, value) in entries {
            out.extend_from_slice(&tag.to_le_bytes());
            out.extend_from_slice(&kind.to_le_bytes());
            out.extend_from_slice(&count.to_le_bytes());
            out.extend_from_slice(&value.to_le_bytes());
        }
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(tail);
        out
    }

    fn tail_at(entries: usize) -> u32 {
        8 + 2 + 12 * entries as u32 + 4
    }

    #[test]
    fn orientation_and_datetime_are_read() {
        let raw = tiff(
            &[(0x0112, 3, 1, 6), (0x0132, 2, 20, tail_at(2))],
            b"2023:11:05 08:09:10\0",
        );
        let exif = read_exif(Some(&raw));
        assert_eq!(exif.orientation, 6);
        assert_eq!(exif.taken_at, Some(datetime!(2023-11-05 08:09:10)));
    }

    #[test]
    fn the_app1_prefix_is_accepted() {
        let mut raw = b"Exif\0\0".to_vec();
        raw.extend(tiff(&[(0x0112, 3, 1, 3)], b""));
        assert_eq!(read_exif(Some(&raw)).orientation, 3);
    }

    #[test]
    fn junk_means_upright_and_no_time() {
        let none = Exif {
            orientation: 1,
            taken_at: None,
        };
        assert_eq!(read_exif(None), none);
        assert_eq!(read_exif(Some(b"not exif at all")), none);
        let bad = tiff(
            &[(0x0112, 3, 1, 9), (0x0132, 2, 20, tail_at(2))],
            b"2023:02:30 08:09:10\0",
        );
        assert_eq!(read_exif(Some(&bad)), none);
        let blank = tiff(&[(0x0132, 2, 20, tail_at(1))], b"    :  :     :  :  \0");
        assert_eq!(read_exif(Some(&blank)), none);
    }
}
