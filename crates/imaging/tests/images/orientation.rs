//! EXIF orientation: a non-square JPEG with a red block in one corner and a blue block in
//! another, stored so that the orientation tag turns it into the same upright picture
//! (red top left, blue top right). All eight values must come out that way.

use matsuri_imaging::{Format, process};

use crate::fixtures::{decode_webp, exif_segment, jpeg_rgb, near, short, tiff, with_segments};

const RED: [u8; 3] = [230, 20, 20];
const BLUE: [u8; 3] = [20, 20, 230];
const GREY: [u8; 3] = [128, 128, 128];

#[derive(Clone, Copy, Debug)]
enum Corner {
    TopLeft,
    TopRight,
    BottomLeft,
    BottomRight,
}

/// Where, in the stored pixels, the upright top-left (red) and top-right (blue) corners
/// are for each orientation.
fn stored_corners(orientation: u16) -> (Corner, Corner) {
    use Corner::*;
    match orientation {
        1 => (TopLeft, TopRight),
        2 => (TopRight, TopLeft),
        3 => (BottomRight, BottomLeft),
        4 => (BottomLeft, BottomRight),
        5 => (TopLeft, BottomLeft),
        6 => (BottomLeft, TopLeft),
        7 => (BottomRight, TopRight),
        _ => (TopRight, BottomRight),
    }
}

fn in_corner(corner: Corner, x: u32, y: u32, width: u32, height: u32) -> bool {
    const BLOCK: u32 = 40;
    let left = x < BLOCK;
    let right = x >= width - BLOCK;
    let top = y < BLOCK;
    let bottom = y >= height - BLOCK;
    match corner {
        Corner::TopLeft => left && top,
        Corner::TopRight => right && top,
        Corner::BottomLeft => left && bottom,
        Corner::BottomRight => right && bottom,
    }
}

/// A 240 × 160 stored picture for `orientation`, with its EXIF segment.
fn stored(orientation: u16) -> Vec<u8> {
    let (width, height) = (240, 160);
    let (red, blue) = stored_corners(orientation);
    let jpeg = jpeg_rgb(width, height, |x, y| {
        if in_corner(red, x, y, width, height) {
            RED
        } else if in_corner(blue, x, y, width, height) {
            BLUE
        } else {
            GREY
        }
    });
    let exif = tiff(vec![short(0x0112, orientation)], vec![], vec![]);
    with_segments(&jpeg, &[exif_segment(exif)])
}

#[test]
fn all_eight_orientations_come_out_upright() {
    for orientation in 1..=8u16 {
        let processed = process(&stored(orientation), Format::Jpeg).unwrap();
        let upright = if orientation >= 5 {
            (160, 240)
        } else {
            (240, 160)
        };
        assert_eq!(
            (processed.width, processed.height),
            upright,
            "orientation {orientation}"
        );
        for variant in &processed.variants[1..] {
            assert_eq!(
                (variant.width, variant.height),
                upright,
                "{} not enlarged",
                variant.name
            );
            let picture = decode_webp(&variant.webp);
            let (w, h) = picture.dimensions();
            let at = |x: u32, y: u32| picture.get_pixel(x, y).0;
            assert!(
                near(at(20, 20), RED, 40),
                "orientation {orientation}: top left {:?}",
                at(20, 20)
            );
            assert!(
                near(at(w - 21, 20), BLUE, 40),
                "orientation {orientation}: top right {:?}",
                at(w - 21, 20)
            );
            assert!(
                near(at(20, h - 21), GREY, 20),
                "orientation {orientation}: bottom left"
            );
            assert!(
                near(at(w - 21, h - 21), GREY, 20),
                "orientation {orientation}: bottom right"
            );
        }
        let thumbnail = &processed.variants[0];
        assert_eq!((thumbnail.width, thumbnail.height), (100, 100));
    }
}

#[test]
fn orientation_six_swaps_a_photo_sized_image() {
    // Big enough to take the DCT-scaled path: 2400 × 1600 stored, 1600 × 2400 shown.
    let jpeg = jpeg_rgb(
        2400,
        1600,
        |x, y| if x < 300 && y > 1300 { RED } else { GREY },
    );
    let exif = tiff(vec![short(0x0112, 6)], vec![], vec![]);
    let processed = process(&with_segments(&jpeg, &[exif_segment(exif)]), Format::Jpeg).unwrap();
    assert_eq!((processed.width, processed.height), (1600, 2400));
    let large = &processed.variants[2];
    assert_eq!((large.width, large.height), (1280, 1920));
    // The stored bottom-left block is shown top left.
    let picture = decode_webp(&large.webp);
    assert!(near(picture.get_pixel(60, 60).0, RED, 40));
    assert!(near(picture.get_pixel(1200, 1800).0, GREY, 20));
}
