//! The sample photographs (shared/data/images, 12–20 MP JPEGs) and photo-like fixtures:
//! variant sizes, never enlarging, and no metadata in the output.

use std::path::PathBuf;

use matsuri_imaging::{Format, Processed, inspect, process};
use time::macros::datetime;

use crate::fixtures::{decode_webp, jpeg_rgb, riff_chunks, with_camera_metadata};

/// `MATSURI_SAMPLE_IMAGES`, or `shared/data/images` beside the repository.
pub fn photo_dir() -> PathBuf {
    std::env::var_os("MATSURI_SAMPLE_IMAGES").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/images"),
        PathBuf::from,
    )
}

/// Checks the three variants of an original displayed at `width × height`.
pub fn assert_variants(processed: &Processed, width: u32, height: u32) {
    assert_eq!((processed.width, processed.height), (width, height));
    let names: Vec<_> = processed.variants.iter().map(|v| v.name).collect();
    assert_eq!(names, ["thumbnail", "medium", "large"]);
    for (variant, bound) in processed.variants.iter().zip([100, 800, 1920]) {
        let decoded = decode_webp(&variant.webp);
        assert_eq!(
            decoded.dimensions(),
            (variant.width, variant.height),
            "{} as reported",
            variant.name
        );
        assert_no_metadata(&variant.webp);
        if variant.name == "thumbnail" {
            assert_eq!((variant.width, variant.height), (100, 100));
            continue;
        }
        assert!(
            variant.width <= bound && variant.height <= bound,
            "{}",
            variant.name
        );
        assert!(
            variant.width <= width && variant.height <= height,
            "never enlarged"
        );
        if width > bound || height > bound {
            assert_eq!(
                variant.width.max(variant.height),
                bound,
                "{} fills its box",
                variant.name
            );
        } else {
            assert_eq!(
                (variant.width, variant.height),
                (width, height),
                "kept its size"
            );
        }
        // The aspect ratio holds to within a pixel on the short side.
        let expected_height = f64::from(variant.width) * f64::from(height) / f64::from(width);
        let expected_width = f64::from(variant.height) * f64::from(width) / f64::from(height);
        assert!(
            (f64::from(variant.height) - expected_height).abs() <= 1.0
                || (f64::from(variant.width) - expected_width).abs() <= 1.0,
            "{} {}x{} keeps {width}x{height}",
            variant.name,
            variant.width,
            variant.height
        );
    }
}

/// Only image chunks: no EXIF, XMP or ICCP, and no VP8X flag announcing one.
pub fn assert_no_metadata(webp: &[u8]) {
    for chunk in riff_chunks(webp) {
        assert!(
            matches!(&chunk, b"VP8 " | b"VP8L" | b"VP8X" | b"ALPH"),
            "unexpected chunk {:?}",
            String::from_utf8_lossy(&chunk)
        );
    }
    if &webp[12..16] == b"VP8X" {
        let flags = webp[20];
        assert_eq!(
            flags & (0x20 | 0x08 | 0x04),
            0,
            "VP8X announces ICC, EXIF or XMP"
        );
    }
}

#[test]
fn every_sample_photo_gets_three_variants() {
    let mut photos: Vec<_> = std::fs::read_dir(photo_dir())
        .expect("shared/data/images is there (or set MATSURI_SAMPLE_IMAGES)")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "jpg"))
        .collect();
    photos.sort();
    assert!(photos.len() >= 5, "the five sample photos");
    for path in photos {
        let bytes = std::fs::read(&path).expect("read a photo");
        let header = inspect(&bytes, Format::Jpeg).expect("a photo passes the guards");
        let processed = process(&bytes, Format::Jpeg)
            .unwrap_or_else(|failure| panic!("{}: {failure}", path.display()));
        assert_eq!(processed.format, Format::Jpeg);
        // The samples carry no EXIF: upright as stored, no capture time.
        assert_eq!(processed.taken_at, None);
        assert_variants(&processed, header.width, header.height);
    }
}

#[test]
fn a_small_photo_keeps_its_size() {
    let jpeg = jpeg_rgb(300, 200, |x, y| [(x % 256) as u8, (y % 256) as u8, 90]);
    let processed = process(&jpeg, Format::Jpeg).unwrap();
    assert_variants(&processed, 300, 200);
    assert_eq!(
        (processed.variants[1].width, processed.variants[1].height),
        (300, 200)
    );
    assert_eq!(
        (processed.variants[2].width, processed.variants[2].height),
        (300, 200)
    );
}

#[test]
fn a_tiny_image_still_gets_a_full_thumbnail() {
    let jpeg = jpeg_rgb(1, 1, |_, _| [10, 200, 30]);
    let processed = process(&jpeg, Format::Jpeg).unwrap();
    assert_variants(&processed, 1, 1);
}

#[test]
fn a_panorama_thumbnail_comes_from_enough_pixels() {
    // 4000 × 150: the large variant is 1920 × 72, too short for a sharp 100 × 100 crop,
    // so the thumbnail is cut from the decoded original. Its centre is the stripe.
    let jpeg = jpeg_rgb(4000, 150, |x, _| {
        if (1950..2050).contains(&x) {
            [250, 250, 250]
        } else {
            [20, 20, 20]
        }
    });
    let processed = process(&jpeg, Format::Jpeg).unwrap();
    assert_variants(&processed, 4000, 150);
    assert_eq!(
        (processed.variants[2].width, processed.variants[2].height),
        (1920, 72)
    );
    let thumbnail = decode_webp(&processed.variants[0].webp);
    // The crop is 150 × 150 around the centre; the 100-pixel stripe is two thirds of it.
    assert!(thumbnail.get_pixel(50, 50)[0] > 200);
    assert!(thumbnail.get_pixel(2, 50)[0] < 60);
}

#[test]
fn a_photo_with_gps_exif_has_none_left() {
    let jpeg = jpeg_rgb(640, 480, |x, y| [(x / 3) as u8, (y / 2) as u8, 128]);
    let tagged = with_camera_metadata(&jpeg, 1);
    let processed = process(&tagged, Format::Jpeg).unwrap();
    assert_eq!(processed.taken_at, Some(datetime!(2023-07-14 18:30:45)));
    assert_variants(&processed, 640, 480);
    for variant in &processed.variants {
        for needle in [
            &b"Exif"[..],
            b"GPS",
            b"FixtureCam",
            b"SECRET-XMP-MARK",
            b"SECRET-ICC-MARK",
            b"xmpmeta",
        ] {
            assert!(
                !variant.webp.windows(needle.len()).any(|w| w == needle),
                "{} still holds {:?}",
                variant.name,
                String::from_utf8_lossy(needle)
            );
        }
    }
}

#[test]
fn the_capture_time_falls_back_to_datetime() {
    use crate::fixtures::{ascii, exif_segment, short, tiff, with_segments};
    let jpeg = jpeg_rgb(64, 48, |_, _| [1, 2, 3]);
    let exif = tiff(
        vec![short(0x0112, 1), ascii(0x0132, "2021:12:31 23:59:58")],
        vec![],
        vec![],
    );
    let processed = process(&with_segments(&jpeg, &[exif_segment(exif)]), Format::Jpeg).unwrap();
    assert_eq!(processed.taken_at, Some(datetime!(2021-12-31 23:59:58)));
}
