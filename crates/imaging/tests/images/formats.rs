//! Every kind of input the issue lists: grey and CMYK JPEGs; grey, palette, 16-bit and
//! alpha PNGs (alpha kept only where something is transparent); WebP; and the first frame
//! of an animated PNG or WebP.

use matsuri_imaging::{Format, Processed, process};

use crate::fixtures::{
    animated_webp, apng, decode_webp, jpeg_cmyk, jpeg_grey, near, png, riff_chunks, webp_rgba,
};
use crate::photos::assert_variants;

fn has_alpha(processed: &Processed) -> bool {
    processed
        .variants
        .iter()
        .all(|v| riff_chunks(&v.webp).contains(b"ALPH"))
}

#[test]
fn a_grey_jpeg_becomes_rgb() {
    let jpeg = jpeg_grey(900, 600, |x, _| if x < 450 { 30 } else { 220 });
    let processed = process(&jpeg, Format::Jpeg).unwrap();
    assert_variants(&processed, 900, 600);
    let medium = decode_webp(&processed.variants[1].webp);
    assert!(near(medium.get_pixel(100, 300).0, [30, 30, 30], 12));
    assert!(near(medium.get_pixel(700, 300).0, [220, 220, 220], 12));
}

#[test]
fn a_cmyk_jpeg_becomes_rgb() {
    // 4 × 2 blocks (32 × 16): the left half cyan ink, the right half black ink.
    let jpeg = jpeg_cmyk(4, 2, |bx, _| {
        if bx < 2 {
            [255, 0, 0, 0]
        } else {
            [0, 0, 0, 255]
        }
    });
    let processed = process(&jpeg, Format::Jpeg).unwrap();
    assert_variants(&processed, 32, 16);
    let large = decode_webp(&processed.variants[2].webp);
    assert!(
        near(large.get_pixel(6, 8).0, [0, 255, 255], 30),
        "{:?}",
        large.get_pixel(6, 8)
    );
    assert!(
        near(large.get_pixel(26, 8).0, [0, 0, 0], 30),
        "{:?}",
        large.get_pixel(26, 8)
    );
}

/// Colour type, bit depth, palette with transparency, and the packed samples.
type PngCase<'a> = (
    png::ColorType,
    png::BitDepth,
    Option<(&'a [u8], &'a [u8])>,
    &'a [u8],
);

#[test]
fn pngs_of_every_colour_type_work() {
    use png::{BitDepth, ColorType};
    let (w, h) = (120u32, 80u32);
    let n = (w * h) as usize;
    let grey = vec![77u8; n];
    let grey_alpha: Vec<u8> = (0..n).flat_map(|_| [77u8, 255]).collect();
    let rgb16: Vec<u8> = (0..n)
        .flat_map(|_| [0xC8u8, 0x00, 0x20, 0x00, 0x40, 0x00])
        .collect();
    let palette_indices: Vec<u8> = (0..n).map(|i| (i % 2) as u8).collect();
    let cases: [PngCase; 4] = [
        (ColorType::Grayscale, BitDepth::Eight, None, &grey),
        (
            ColorType::GrayscaleAlpha,
            BitDepth::Eight,
            None,
            &grey_alpha,
        ),
        (ColorType::Rgb, BitDepth::Sixteen, None, &rgb16),
        (
            ColorType::Indexed,
            BitDepth::Eight,
            Some((&[200, 32, 64, 200, 32, 64], &[255, 255])),
            &palette_indices,
        ),
    ];
    for (colour, depth, palette, data) in cases {
        let file = png(w, h, colour, depth, palette, data);
        let processed =
            process(&file, Format::Png).unwrap_or_else(|f| panic!("{colour:?} {depth:?}: {f}"));
        assert_variants(&processed, w, h);
        assert!(
            !has_alpha(&processed),
            "{colour:?}: opaque, so no alpha chunk"
        );
        let large = decode_webp(&processed.variants[2].webp);
        let want = if matches!(colour, ColorType::Grayscale | ColorType::GrayscaleAlpha) {
            [77, 77, 77]
        } else {
            [200, 32, 64]
        };
        assert!(
            near(large.get_pixel(60, 40).0, want, 10),
            "{colour:?}: {:?}",
            large.get_pixel(60, 40)
        );
    }
}

#[test]
fn transparency_is_kept() {
    use png::{BitDepth, ColorType};
    let (w, h) = (64u32, 64u32);
    // Left half transparent, right half opaque green; 16-bit RGBA, and a palette with tRNS.
    let rgba16: Vec<u8> = (0..h)
        .flat_map(|_| (0..w).map(|x| x >= w / 2))
        .flat_map(|opaque| {
            if opaque {
                [0, 0, 0xFF, 0xFF, 0, 0, 0xFF, 0xFF]
            } else {
                [0; 8]
            }
        })
        .collect();
    let indices: Vec<u8> = (0..h)
        .flat_map(|_| (0..w).map(|x| u8::from(x >= w / 2)))
        .collect();
    let files = [
        png(w, h, ColorType::Rgba, BitDepth::Sixteen, None, &rgba16),
        png(
            w,
            h,
            ColorType::Indexed,
            BitDepth::Eight,
            Some((&[0, 0, 0, 0, 255, 0], &[0, 255])),
            &indices,
        ),
    ];
    for file in files {
        let processed = process(&file, Format::Png).unwrap();
        assert_variants(&processed, w, h);
        assert!(has_alpha(&processed));
        let medium = decode_webp(&processed.variants[1].webp);
        assert!(medium.get_pixel(8, 32)[3] < 10, "transparent side");
        assert_eq!(medium.get_pixel(56, 32)[3], 255, "opaque side");
        assert!(near(medium.get_pixel(56, 32).0, [0, 255, 0], 16));
    }
}

#[test]
fn a_webp_original_works_with_its_alpha() {
    let webp = webp_rgba(300, 200, |x, _| {
        if x < 150 {
            [255, 0, 0, 255]
        } else {
            [0, 0, 255, 0]
        }
    });
    let processed = process(&webp, Format::Webp).unwrap();
    assert_eq!(processed.format, Format::Webp);
    assert_variants(&processed, 300, 200);
    assert!(has_alpha(&processed));
    let lossy = webp::Encoder::from_rgb(&[10; 3 * 50 * 40], 50, 40)
        .encode(90.0)
        .to_vec();
    assert_variants(&process(&lossy, Format::Webp).unwrap(), 50, 40);
}

#[test]
fn an_animated_png_gives_its_first_frame() {
    let file = apng(
        80,
        60,
        &[[250, 0, 0, 255], [0, 0, 250, 255], [0, 250, 0, 255]],
    );
    let processed = process(&file, Format::Png).unwrap();
    assert_variants(&processed, 80, 60);
    let thumbnail = decode_webp(&processed.variants[0].webp);
    assert!(
        near(thumbnail.get_pixel(50, 50).0, [250, 0, 0], 20),
        "{:?}",
        thumbnail.get_pixel(50, 50)
    );
}

#[test]
fn an_animated_webp_gives_its_first_frame() {
    let file = animated_webp(80, 60, &[[250, 0, 0], [0, 0, 250]]);
    assert!(
        riff_chunks(&file).contains(b"ANMF"),
        "the fixture is animated"
    );
    let processed = process(&file, Format::Webp).unwrap();
    assert_variants(&processed, 80, 60);
    for variant in &processed.variants {
        assert!(
            !riff_chunks(&variant.webp).contains(b"ANMF"),
            "variants are stills"
        );
    }
    let thumbnail = decode_webp(&processed.variants[0].webp);
    assert!(
        near(thumbnail.get_pixel(50, 50).0, [250, 0, 0], 20),
        "{:?}",
        thumbnail.get_pixel(50, 50)
    );
}
