//! Decoded pixels between the decoders and the encoder: an 8-bit buffer in one of four
//! layouts, and the small whole-buffer operations the pipeline needs (16 → 8 bits, CMYK →
//! RGB, the eight EXIF orientations, grey → RGB for WebP, dropping an alpha channel that is
//! opaque everywhere). The in-place conversions reuse the decoder's buffer, so a 16-bit PNG
//! or a CMYK JPEG costs no second full-size allocation.

use fast_image_resize::PixelType;

/// How the samples of one pixel are laid out; always 8 bits a sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    Grey,
    GreyAlpha,
    Rgb,
    Rgba,
}

impl Layout {
    pub fn channels(self) -> usize {
        match self {
            Layout::Grey => 1,
            Layout::GreyAlpha => 2,
            Layout::Rgb => 3,
            Layout::Rgba => 4,
        }
    }

    pub fn pixel_type(self) -> PixelType {
        match self {
            Layout::Grey => PixelType::U8,
            Layout::GreyAlpha => PixelType::U8x2,
            Layout::Rgb => PixelType::U8x3,
            Layout::Rgba => PixelType::U8x4,
        }
    }
}

/// A decoded image, `width × height` pixels of `layout`, rows top to bottom without padding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pixels {
    pub width: u32,
    pub height: u32,
    pub layout: Layout,
    pub data: Vec<u8>,
}

/// Turns native-endian 16-bit samples into 8-bit ones, in place (the buffer halves).
pub(crate) fn strip_16_bits(data: &mut Vec<u8>) {
    let samples = data.len() / 2;
    for i in 0..samples {
        let wide = u32::from(u16::from_ne_bytes([data[2 * i], data[2 * i + 1]]));
        // Rounded 65535 → 255; `i <= 2i` so no sample is overwritten before it is read.
        data[i] = ((wide * 255 + 32_767) / 65_535) as u8;
    }
    data.truncate(samples);
}

/// Turns the CMYK that `jpeg-decoder` returns (ink amounts, 0 = none, having undone
/// Adobe's inversion) into RGB, in place (the buffer shrinks by a quarter).
pub(crate) fn cmyk_to_rgb(data: &mut Vec<u8>) {
    let pixels = data.len() / 4;
    for i in 0..pixels {
        let [c, m, y, k] = [0, 1, 2, 3].map(|j| u32::from(data[4 * i + j]));
        let white = 255 - k;
        // `3i + 2 < 4i` for i > 2, and for the first pixels the reads above come first.
        data[3 * i] = ((255 - c) * white / 255) as u8;
        data[3 * i + 1] = ((255 - m) * white / 255) as u8;
        data[3 * i + 2] = ((255 - y) * white / 255) as u8;
    }
    data.truncate(pixels * 3);
}

/// Whether an EXIF orientation (1–8) swaps width and height.
pub(crate) fn swaps_sides(orientation: u8) -> bool {
    matches!(orientation, 5..=8)
}

/// Applies an EXIF orientation, so the pixels come out as the photo is meant to be seen.
/// 1 (or anything outside 1–8) leaves them as stored.
pub(crate) fn orient(pixels: Pixels, orientation: u8) -> Pixels {
    if !(2..=8).contains(&orientation) {
        return pixels;
    }
    let (w, h) = (pixels.width as usize, pixels.height as usize);
    let (out_w, out_h) = if swaps_sides(orientation) {
        (h, w)
    } else {
        (w, h)
    };
    let n = pixels.layout.channels();
    let mut out = vec![0u8; pixels.data.len()];
    // For each pixel of the upright picture, the stored pixel it comes from.
    let source = |x: usize, y: usize| -> (usize, usize) {
        match orientation {
            2 => (w - 1 - x, y),         // mirrored
            3 => (w - 1 - x, h - 1 - y), // upside down
            4 => (x, h - 1 - y),         // mirrored upside down
            5 => (y, x),                 // transposed
            6 => (y, h - 1 - x),         // stored turned 90° anticlockwise
            7 => (w - 1 - y, h - 1 - x), // transversed
            _ => (w - 1 - y, x),         // 8: stored turned 90° clockwise
        }
    };
    for (y, row) in out.chunks_exact_mut(out_w * n).enumerate().take(out_h) {
        for (x, pixel) in row.chunks_exact_mut(n).enumerate() {
            let (sx, sy) = source(x, y);
            let at = (sy * w + sx) * n;
            pixel.copy_from_slice(&pixels.data[at..at + n]);
        }
    }
    Pixels {
        width: out_w as u32,
        height: out_h as u32,
        layout: pixels.layout,
        data: out,
    }
}

/// The pixels as libwebp takes them: RGB, or RGBA when some pixel is not opaque.
pub(crate) fn for_webp(pixels: Pixels) -> Pixels {
    let Pixels {
        width,
        height,
        layout,
        data,
    } = pixels;
    let opaque = |samples: &[u8], n: usize| samples.chunks_exact(n).all(|p| p[n - 1] == 255);
    let (layout, data) = match layout {
        Layout::Rgb => (Layout::Rgb, data),
        Layout::Rgba if opaque(&data, 4) => (
            Layout::Rgb,
            data.chunks_exact(4)
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect(),
        ),
        Layout::Rgba => (Layout::Rgba, data),
        Layout::Grey => (Layout::Rgb, data.iter().flat_map(|&g| [g, g, g]).collect()),
        Layout::GreyAlpha if opaque(&data, 2) => (
            Layout::Rgb,
            data.chunks_exact(2)
                .flat_map(|p| [p[0], p[0], p[0]])
                .collect(),
        ),
        Layout::GreyAlpha => (
            Layout::Rgba,
            data.chunks_exact(2)
                .flat_map(|p| [p[0], p[0], p[0], p[1]])
                .collect(),
        ),
    };
    Pixels {
        width,
        height,
        layout,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3 × 2 grey image whose pixel values are their stored index.
    fn indexed() -> Pixels {
        Pixels {
            width: 3,
            height: 2,
            layout: Layout::Grey,
            data: vec![0, 1, 2, 3, 4, 5],
        }
    }

    #[test]
    fn orientations_map_pixels_as_exif_says() {
        // Stored:  0 1 2
        //          3 4 5
        let cases: [(u8, u32, &[u8]); 8] = [
            (1, 3, &[0, 1, 2, 3, 4, 5]),
            (2, 3, &[2, 1, 0, 5, 4, 3]),
            (3, 3, &[5, 4, 3, 2, 1, 0]),
            (4, 3, &[3, 4, 5, 0, 1, 2]),
            (5, 2, &[0, 3, 1, 4, 2, 5]),
            (6, 2, &[3, 0, 4, 1, 5, 2]),
            (7, 2, &[5, 2, 4, 1, 3, 0]),
            (8, 2, &[2, 5, 1, 4, 0, 3]),
        ];
        for (orientation, width, expected) in cases {
            let out = orient(indexed(), orientation);
            assert_eq!(out.width, width, "orientation {orientation}");
            assert_eq!(out.width * out.height, 6);
            assert_eq!(out.data, expected, "orientation {orientation}");
        }
    }

    #[test]
    fn sixteen_bits_round_to_eight() {
        let mut data: Vec<u8> = [0u16, 65_535, 32_896, 128]
            .iter()
            .flat_map(|v| v.to_ne_bytes())
            .collect();
        strip_16_bits(&mut data);
        assert_eq!(data, [0, 255, 128, 0]);
    }

    #[test]
    fn cmyk_becomes_rgb() {
        let mut data = vec![0, 0, 0, 0, 255, 0, 0, 0, 0, 0, 0, 255, 0, 255, 255, 128];
        cmyk_to_rgb(&mut data);
        assert_eq!(data, [255, 255, 255, 0, 255, 255, 0, 0, 0, 127, 0, 0]);
    }

    #[test]
    fn opaque_alpha_is_dropped_and_grey_widened() {
        let rgba = Pixels {
            width: 2,
            height: 1,
            layout: Layout::Rgba,
            data: vec![1, 2, 3, 255, 4, 5, 6, 255],
        };
        let out = for_webp(rgba);
        assert_eq!(
            (out.layout, out.data),
            (Layout::Rgb, vec![1, 2, 3, 4, 5, 6])
        );
        let grey_alpha = Pixels {
            width: 2,
            height: 1,
            layout: Layout::GreyAlpha,
            data: vec![9, 255, 7, 0],
        };
        let out = for_webp(grey_alpha);
        assert_eq!(
            (out.layout, out.data),
            (Layout::Rgba, vec![9, 9, 9, 255, 7, 7, 7, 0])
        );
    }
}
