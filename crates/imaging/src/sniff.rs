//! The first look at an upload: the format from its magic bytes, and the dimensions from
//! its header, read here by hand without any decoder. This is what stops a decompression
//! bomb: a 100 000 × 100 000 PNG is refused from 29 bytes, before a decoder allocates a
//! single row. Nothing in this room allocates more than a few bytes.

use crate::{Failure, Format};

/// How many leading bytes [`sniff`] needs: `RIFF????WEBP` is the longest signature.
pub const SNIFF_LEN: usize = 12;

/// The format by magic bytes alone (never a file name or a content type), from the first
/// [`SNIFF_LEN`] bytes of a file; fewer bytes can still name a JPEG or a PNG.
pub fn sniff(head: &[u8]) -> Option<Format> {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(Format::Jpeg)
    } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(Format::Png)
    } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        Some(Format::Webp)
    } else {
        None
    }
}

/// What a header declares, read before decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub width: u32,
    pub height: u32,
    /// For a JPEG, its frame (for the memory estimate); `None` for the other formats.
    pub jpeg: Option<JpegFrame>,
}

/// The parts of a JPEG frame header (SOF) that decide how much memory decoding takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct JpegFrame {
    pub progressive: bool,
    /// Sampling factors (horizontal, vertical) of each component, `count` of them.
    pub sampling: [(u8, u8); 4],
    pub count: usize,
}

/// Reads the declared dimensions of an image already sniffed as `format`.
pub(crate) fn read_header(bytes: &[u8], format: Format) -> Result<Header, Failure> {
    match format {
        Format::Jpeg => jpeg_header(bytes),
        Format::Png => png_header(bytes),
        Format::Webp => webp_header(bytes),
    }
}

fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn le24(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 3)?;
    Some(u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16)
}

/// Walks the marker segments from SOI to the frame header. Only the Huffman-coded DCT
/// frames that `jpeg-decoder` handles at 8 bits are accepted.
fn jpeg_header(bytes: &[u8]) -> Result<Header, Failure> {
    let mut at = 2; // after SOI
    loop {
        // Markers may be preceded by any number of 0xFF fill bytes.
        if *bytes.get(at).ok_or(Failure::Truncated)? != 0xFF {
            return Err(Failure::Corrupt);
        }
        while bytes.get(at) == Some(&0xFF) {
            at += 1;
        }
        let marker = *bytes.get(at).ok_or(Failure::Truncated)?;
        at += 1;
        match marker {
            // Stand-alone markers carry no length.
            0x01 | 0xD0..=0xD7 => continue,
            // SOS or EOI before any frame header: no image here.
            0xD9 | 0xDA | 0x00 => return Err(Failure::Corrupt),
            _ => {}
        }
        let length = usize::from(be16(bytes, at).ok_or(Failure::Truncated)?);
        if length < 2 {
            return Err(Failure::Corrupt);
        }
        let segment = bytes.get(at + 2..at + length).ok_or(Failure::Truncated)?;
        match marker {
            0xC0..=0xC2 => return jpeg_frame(segment, marker == 0xC2),
            0xC3 | 0xC5..=0xC7 => {
                return Err(Failure::Unsupported("lossless or hierarchical JPEG"));
            }
            0xC9..=0xCB | 0xCD..=0xCF => return Err(Failure::Unsupported("arithmetic-coded JPEG")),
            _ => at += length,
        }
    }
}

fn jpeg_frame(segment: &[u8], progressive: bool) -> Result<Header, Failure> {
    let precision = *segment.first().ok_or(Failure::Corrupt)?;
    let height = u32::from(be16(segment, 1).ok_or(Failure::Corrupt)?);
    let width = u32::from(be16(segment, 3).ok_or(Failure::Corrupt)?);
    let count = usize::from(*segment.get(5).ok_or(Failure::Corrupt)?);
    if precision != 8 {
        return Err(Failure::Unsupported("12-bit JPEG"));
    }
    if height == 0 {
        // The height would come later, in a DNL marker, which the decoder does not read.
        return Err(Failure::Unsupported("JPEG with a DNL height"));
    }
    if width == 0 || !matches!(count, 1 | 3 | 4) {
        return Err(Failure::Corrupt);
    }
    let mut sampling = [(1, 1); 4];
    for (i, slot) in sampling.iter_mut().enumerate().take(count) {
        let factors = *segment.get(6 + 3 * i + 1).ok_or(Failure::Corrupt)?;
        let (h, v) = (factors >> 4, factors & 0x0F);
        if !(1..=4).contains(&h) || !(1..=4).contains(&v) {
            return Err(Failure::Corrupt);
        }
        *slot = (h, v);
    }
    Ok(Header {
        width,
        height,
        jpeg: Some(JpegFrame {
            progressive,
            sampling,
            count,
        }),
    })
}

/// The IHDR chunk must come first, right after the signature.
fn png_header(bytes: &[u8]) -> Result<Header, Failure> {
    if bytes.len() < 8 + 8 + 13 {
        return Err(Failure::Truncated);
    }
    if be32(bytes, 8) != Some(13) || &bytes[12..16] != b"IHDR" {
        return Err(Failure::Corrupt);
    }
    let width = be32(bytes, 16).ok_or(Failure::Truncated)?;
    let height = be32(bytes, 20).ok_or(Failure::Truncated)?;
    if width == 0 || height == 0 {
        return Err(Failure::Corrupt);
    }
    Ok(Header {
        width,
        height,
        jpeg: None,
    })
}

/// The first chunk after `RIFF size WEBP` says the kind: simple lossy (`VP8 `), simple
/// lossless (`VP8L`) or extended (`VP8X`, which carries the canvas size).
fn webp_header(bytes: &[u8]) -> Result<Header, Failure> {
    // The RIFF header says how long the file is; a shorter file lost its end.
    let declared = bytes.get(4..8).ok_or(Failure::Truncated)?;
    let declared = u32::from_le_bytes([declared[0], declared[1], declared[2], declared[3]]);
    if u64::from(declared) + 8 > bytes.len() as u64 {
        return Err(Failure::Truncated);
    }
    let chunk = bytes.get(12..16).ok_or(Failure::Truncated)?;
    let (width, height) = match chunk {
        b"VP8 " => {
            if bytes.get(23..26).ok_or(Failure::Truncated)? != [0x9D, 0x01, 0x2A] {
                return Err(Failure::Corrupt);
            }
            let b = bytes.get(26..30).ok_or(Failure::Truncated)?;
            let w = u32::from(u16::from_le_bytes([b[0], b[1]]));
            let h = u32::from(u16::from_le_bytes([b[2], b[3]]));
            (w & 0x3FFF, h & 0x3FFF)
        }
        b"VP8L" => {
            let b = bytes.get(20..25).ok_or(Failure::Truncated)?;
            if b[0] != 0x2F {
                return Err(Failure::Corrupt);
            }
            let bits = u32::from_le_bytes([b[1], b[2], b[3], b[4]]);
            ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
        }
        b"VP8X" => {
            let w = le24(bytes, 24).ok_or(Failure::Truncated)?;
            let h = le24(bytes, 27).ok_or(Failure::Truncated)?;
            (w + 1, h + 1)
        }
        _ => return Err(Failure::Corrupt),
    };
    if width == 0 || height == 0 {
        return Err(Failure::Corrupt);
    }
    Ok(Header {
        width,
        height,
        jpeg: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_bytes_name_the_format() {
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(Format::Jpeg));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR"), Some(Format::Png));
        assert_eq!(sniff(b"RIFF\x10\0\0\0WEBPVP8 "), Some(Format::Webp));
        assert_eq!(sniff(b"RIFF\x10\0\0\0WAVEfmt "), None);
        assert_eq!(sniff(b"GIF89a"), None);
        assert_eq!(sniff(b"<svg xmlns="), None);
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(&[0xFF, 0xD8]), None);
    }

    #[test]
    fn png_dimensions_come_from_ihdr() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&100_000u32.to_be_bytes());
        png.extend_from_slice(&7u32.to_be_bytes());
        png.extend_from_slice(&[8, 6, 0, 0, 0]);
        let header = read_header(&png, Format::Png).ok();
        assert_eq!(header.map(|h| (h.width, h.height)), Some((100_000, 7)));
        assert!(matches!(
            read_header(&png[..20], Format::Png),
            Err(Failure::Truncated)
        ));
    }

    #[test]
    fn jpeg_frame_is_found_after_app_segments() {
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 0, 0, 0xFF, 0xFF];
        jpeg.extend_from_slice(&[0xC2, 0, 17, 8, 0x01, 0x2C, 0x02, 0x58, 3]);
        jpeg.extend_from_slice(&[1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
        let header = read_header(&jpeg, Format::Jpeg).ok();
        let frame = header.and_then(|h| h.jpeg);
        assert_eq!(header.map(|h| (h.width, h.height)), Some((600, 300)));
        assert_eq!(
            frame.map(|f| (f.progressive, f.count, f.sampling[0])),
            Some((true, 3, (2, 2)))
        );
        assert!(matches!(
            read_header(&jpeg[..12], Format::Jpeg),
            Err(Failure::Truncated)
        ));
        jpeg[10] = 0xC9;
        assert!(matches!(
            read_header(&jpeg, Format::Jpeg),
            Err(Failure::Unsupported(_))
        ));
    }

    #[test]
    fn webp_kinds_are_read() {
        let mut lossless = b"RIFF\x0d\0\0\0WEBPVP8L\0\0\0\0\x2F".to_vec();
        let bits: u32 = 639 | (479 << 14);
        lossless.extend_from_slice(&bits.to_le_bytes());
        let header = read_header(&lossless, Format::Webp).ok();
        assert_eq!(header.map(|h| (h.width, h.height)), Some((640, 480)));

        let mut extended = b"RIFF\x16\0\0\0WEBPVP8X\x0a\0\0\0\x02\0\0\0".to_vec();
        extended.extend_from_slice(&[0x3F, 0x42, 0x0F, 0x00, 0x01, 0x00]);
        let header = read_header(&extended, Format::Webp).ok();
        assert_eq!(header.map(|h| (h.width, h.height)), Some((1_000_000, 257)));
    }
}
