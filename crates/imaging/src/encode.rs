//! Lossy WebP through libwebp (the `webp` crate builds it from source). The encoder is
//! handed bare pixels, so what comes out holds only the RIFF header, the VP8 bitstream
//! and, for images with transparency, VP8X and ALPH: no EXIF, XMP or ICC chunk can be
//! carried over from the original, because nothing of the original but its pixels gets
//! this far.

use webp::{Encoder, PixelLayout, WebPConfig};

use crate::Failure;
use crate::pixels::{Layout, Pixels};

/// The lossy quality of every variant (libwebp's 0–100 scale; cwebp's default is 75).
pub const WEBP_QUALITY: f32 = 80.0;

/// libwebp's effort, 0 (fastest) to 6 (smallest); see bench/README.md "Images" for what
/// each costs on the sample photos.
pub const WEBP_METHOD: i32 = 4;

/// Encodes RGB or RGBA pixels (see [`crate::pixels::for_webp`]) as lossy WebP.
pub(crate) fn encode_webp(pixels: &Pixels) -> Result<Vec<u8>, Failure> {
    let layout = match pixels.layout {
        Layout::Rgb => PixelLayout::Rgb,
        Layout::Rgba => PixelLayout::Rgba,
        Layout::Grey | Layout::GreyAlpha => return Err(Failure::Encode),
    };
    let expected = pixels.width as usize * pixels.height as usize * pixels.layout.channels();
    if pixels.width == 0 || pixels.height == 0 || pixels.data.len() != expected {
        return Err(Failure::Encode);
    }
    let mut config = WebPConfig::new().map_err(|()| Failure::Encode)?;
    config.quality = WEBP_QUALITY;
    config.method = WEBP_METHOD;
    config.alpha_compression = 1;
    let encoder = Encoder::new(&pixels.data, layout, pixels.width, pixels.height);
    let webp = encoder
        .encode_advanced(&config)
        .map_err(|_| Failure::Encode)?;
    Ok(webp.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_picture_encodes_to_riff_webp() {
        let pixels = Pixels {
            width: 4,
            height: 3,
            layout: Layout::Rgb,
            data: vec![200; 36],
        };
        let webp = encode_webp(&pixels).unwrap_or_default();
        assert_eq!(&webp[..4], b"RIFF");
        assert_eq!(&webp[8..16], b"WEBPVP8 ");
    }

    #[test]
    fn grey_is_refused_here() {
        let pixels = Pixels {
            width: 1,
            height: 1,
            layout: Layout::Grey,
            data: vec![0],
        };
        assert!(matches!(encode_webp(&pixels), Err(Failure::Encode)));
    }
}
