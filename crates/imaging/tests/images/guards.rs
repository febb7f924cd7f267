//! The guards: bombs refused from their headers, impostors and polyglots, damaged files,
//! and a cheap deterministic fuzz that must never panic.

use matsuri_imaging::{Failure, Format, MAX_BYTES, process};

use crate::fixtures::{jpeg_rgb, png};

fn reason(bytes: &[u8], claimed: Format) -> &'static str {
    match process(bytes, claimed) {
        Ok(_) => "ok",
        Err(failure) => failure.reason(),
    }
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// A well-formed PNG that declares `width × height` but carries a few bytes of data.
fn png_declaring(width: u32, height: u32, depth: u8, colour: u8) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[depth, colour, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    // zlib of a few zero bytes: what a bomb's first compressed block looks like.
    chunk(
        &mut out,
        b"IDAT",
        &[0x78, 0x9C, 0x63, 0x60, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01],
    );
    chunk(&mut out, b"IEND", &[]);
    out
}

#[test]
fn a_png_bomb_is_refused_from_its_header() {
    // 100 000 × 100 000 RGBA would be 40 GB, more than this machine has: reaching the
    // decoder would abort the test, so passing means nothing was allocated for it.
    let bomb = png_declaring(100_000, 100_000, 8, 6);
    assert!(bomb.len() < 100);
    let failure = process(&bomb, Format::Png).unwrap_err();
    assert_eq!(failure.reason(), "too_many_pixels");
    assert!(matches!(
        failure,
        Failure::TooManyPixels {
            width: 100_000,
            height: 100_000
        }
    ));
}

#[test]
fn a_bomb_under_the_pixel_limit_is_refused_for_memory() {
    // 7000 × 7000 = 49 MP, allowed by count, but 16-bit RGBA is 392 MB decoded.
    assert_eq!(
        reason(&png_declaring(7000, 7000, 16, 6), Format::Png),
        "too_much_memory"
    );
    // The same header at 8-bit grey needs 49 MB: it gets to the decoder, which finds the
    // data missing.
    let grey = reason(&png_declaring(7000, 7000, 8, 0), Format::Png);
    assert!(matches!(grey, "truncated" | "corrupt"), "{grey}");
}

#[test]
fn a_jpeg_bomb_is_refused_from_its_frame_header() {
    let mut jpeg = jpeg_rgb(16, 16, |_, _| [9, 9, 9]);
    let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    jpeg[sof + 5..sof + 9].copy_from_slice(&[0xFF, 0xF0, 0xFF, 0xF0]);
    assert_eq!(reason(&jpeg, Format::Jpeg), "too_many_pixels");
}

#[test]
fn a_webp_bomb_is_refused_from_its_header() {
    let mut webp = b"RIFF\x16\0\0\0WEBPVP8X\x0a\0\0\0\0\0\0\0".to_vec();
    webp.extend_from_slice(&[0xFF, 0x3F, 0x00, 0xFF, 0x3F, 0x00]); // 16384 × 16384
    assert_eq!(reason(&webp, Format::Webp), "too_many_pixels");
}

#[test]
fn too_many_bytes_are_refused() {
    let mut big = jpeg_rgb(8, 8, |_, _| [0, 0, 0]);
    big.resize(MAX_BYTES as usize + 1, 0);
    assert_eq!(reason(&big, Format::Jpeg), "too_large");
}

#[test]
fn what_is_not_an_image_is_refused() {
    assert_eq!(
        reason(b"just some text, claimed to be a photo\n", Format::Jpeg),
        "not_an_image"
    );
    let svg = br#"<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>"#;
    assert_eq!(reason(svg, Format::Png), "not_an_image");
    assert_eq!(
        reason(b"GIF89a\x01\0\x01\0\0\0\0;", Format::Png),
        "not_an_image"
    );
    assert_eq!(reason(b"%PDF-1.7\n", Format::Jpeg), "not_an_image");
    assert_eq!(reason(b"", Format::Webp), "not_an_image");
    assert_eq!(
        reason(b"RIFF\0\0\0\0AVI LIST", Format::Webp),
        "not_an_image"
    );
}

#[test]
fn the_claimed_format_must_match_the_bytes() {
    let jpeg = jpeg_rgb(8, 8, |_, _| [0, 0, 0]);
    let failure = process(&jpeg, Format::Png).unwrap_err();
    assert_eq!(failure.reason(), "format_mismatch");
    assert_eq!(
        failure.to_string(),
        "the file is a jpeg image, but it was uploaded as png"
    );
    let png = png(
        1,
        1,
        png::ColorType::Grayscale,
        png::BitDepth::Eight,
        None,
        &[0],
    );
    assert_eq!(reason(&png, Format::Webp), "format_mismatch");
}

#[test]
fn a_truncated_photo_is_refused() {
    let photo = crate::photos::photo_dir().join("Dragonfly_by_Bolly_baseline.jpg");
    let bytes = std::fs::read(&photo)
        .unwrap_or_else(|_| jpeg_rgb(1200, 900, |x, y| [(x % 251) as u8, (y % 241) as u8, 7]));
    let half = &bytes[..bytes.len() / 2];
    assert!(
        matches!(reason(half, Format::Jpeg), "truncated" | "corrupt"),
        "{}",
        reason(half, Format::Jpeg)
    );
    for cut in [3, 4, 20, 200] {
        assert!(
            matches!(reason(&bytes[..cut], Format::Jpeg), "truncated" | "corrupt"),
            "cut at {cut}"
        );
    }
}

#[test]
fn truncated_pngs_and_webps_are_refused() {
    let pixels: Vec<u8> = (0..64 * 64 * 3).map(|i| (i * 7 % 256) as u8).collect();
    let png = png(
        64,
        64,
        png::ColorType::Rgb,
        png::BitDepth::Eight,
        None,
        &pixels,
    );
    for cut in [10, 30, 50, png.len() / 2, png.len() - 13] {
        assert!(
            matches!(reason(&png[..cut], Format::Png), "truncated" | "corrupt"),
            "png cut at {cut}"
        );
    }
    let webp = webp::Encoder::from_rgb(&pixels, 64, 64)
        .encode(80.0)
        .to_vec();
    for cut in [14, 25, webp.len() / 2, webp.len() - 1] {
        assert!(
            matches!(reason(&webp[..cut], Format::Webp), "truncated" | "corrupt"),
            "webp cut at {cut}"
        );
    }
}

#[test]
fn polyglots_are_refused() {
    // A JPEG signature in front of a GIF with HTML in it.
    let mut fake = vec![0xFF, 0xD8, 0xFF];
    fake.extend_from_slice(b"GIF89a<html><script>alert(1)</script></html>");
    assert!(process(&fake, Format::Jpeg).is_err());
    // A valid PNG header followed by HTML instead of chunks.
    let real = png(
        4,
        4,
        png::ColorType::Rgb,
        png::BitDepth::Eight,
        None,
        &[200; 48],
    );
    let mut fake = real[..33].to_vec();
    fake.extend_from_slice(b"<html><body>hello</body></html> and more garbage here");
    assert!(matches!(
        reason(&fake, Format::Png),
        "truncated" | "corrupt"
    ));
    // A JPEG marker segment that runs past the end, hiding a zip.
    let mut fake = vec![0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF];
    fake.extend_from_slice(b"PK\x03\x04 zip content");
    assert_eq!(reason(&fake, Format::Jpeg), "truncated");
}

#[test]
fn a_zip_after_a_real_jpeg_does_not_reach_the_variants() {
    // A valid JPEG with an archive appended decodes (the bytes after EOI are not part of
    // the image), and the variants, encoded from pixels, carry none of it.
    let mut jpeg = jpeg_rgb(120, 90, |x, _| [x as u8, 0, 0]);
    jpeg.extend_from_slice(b"PK\x03\x04SECRET-ZIP-PAYLOAD");
    let processed = process(&jpeg, Format::Jpeg).unwrap();
    for variant in &processed.variants {
        assert!(!variant.webp.windows(6).any(|w| w == b"SECRET"));
    }
}

/// A small deterministic generator, so the fuzz below is the same every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

#[test]
fn damaged_files_fail_without_panicking() {
    let jpeg = jpeg_rgb(48, 32, |x, y| [(x * 5) as u8, (y * 7) as u8, 60]);
    let progressive_free_png = png(
        24,
        16,
        png::ColorType::Rgba,
        png::BitDepth::Eight,
        None,
        &[90; 24 * 16 * 4],
    );
    let pixels: Vec<u8> = (0..32 * 32 * 3).map(|i| (i % 253) as u8).collect();
    let webp = webp::Encoder::from_rgb(&pixels, 32, 32)
        .encode(80.0)
        .to_vec();
    let mut random = Lcg(0x5EED);
    for (original, format) in [
        (jpeg, Format::Jpeg),
        (progressive_free_png, Format::Png),
        (webp, Format::Webp),
    ] {
        for _ in 0..150 {
            let mut damaged = original.clone();
            for _ in 0..1 + random.next() % 4 {
                let at = (random.next() as usize) % damaged.len();
                damaged[at] = random.next() as u8;
            }
            // Either outcome is fine; a panic fails the test.
            let _ = process(&damaged, format);
        }
    }
}
