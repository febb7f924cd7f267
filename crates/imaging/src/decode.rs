//! From bytes to pixels, each format with the cheapest decoder that is safe to point at
//! hostile input, and never before the memory it will take has been worked out and found
//! under [`MAX_MEMORY`]:
//!
//! - JPEG through `jpeg-decoder`, which can shrink on load (`Decoder::scale`, DCT scaling
//!   by 1/2, 1/4 or 1/8) — zune-jpeg, the `image` crate's JPEG decoder, cannot;
//! - PNG and WebP through the `image` crate's decoders (png, image-webp), which give the
//!   first frame of an APNG or an animated WebP, with `image::Limits` as a second fence.
//!
//! A decoder that panics on a crafted file is caught and reported as [`Failure::Corrupt`]:
//! these are third-party parsers, and one bad upload must not take a worker thread down.

use std::io::{self, Cursor};
use std::panic::{AssertUnwindSafe, catch_unwind};

use image::codecs::png::PngDecoder;
use image::codecs::webp::WebPDecoder;
use image::{ColorType, ImageDecoder, ImageError, Limits};
use jpeg_decoder::PixelFormat;

use crate::metadata::{Exif, read_exif};
use crate::pixels::{Layout, Pixels, cmyk_to_rgb, strip_16_bits};
use crate::sniff::{Header, JpegFrame};
use crate::{Failure, Format, MAX_MEMORY};

/// What the rest of the pipeline needs after decoding.
pub(crate) struct Decoded {
    /// In stored orientation; smaller than the header says when decoded at a DCT scale.
    pub pixels: Pixels,
    pub exif: Exif,
}

/// Working memory the pipeline needs beyond the decoder's: the resized variants (at most
/// 1920² RGBA and 800² RGBA), the orientation copy and libwebp's encoder state.
pub(crate) const PIPELINE_RESERVE: u64 = 48 * 1024 * 1024;

/// Decodes the image, at the smallest DCT scale whose result still covers `need`
/// (width, height in stored orientation) for a JPEG, whole for the other formats.
pub(crate) fn decode(
    bytes: &[u8],
    format: Format,
    header: &Header,
    need: (u32, u32),
) -> Result<Decoded, Failure> {
    let decoded = catch_unwind(AssertUnwindSafe(|| match (format, header.jpeg) {
        (Format::Jpeg, Some(frame)) => decode_jpeg(bytes, header, frame, need),
        (Format::Jpeg, None) => Err(Failure::Corrupt),
        (Format::Png, _) => decode_with_image(
            PngDecoder::with_limits(Cursor::new(bytes), limits()),
            Internal::Rows,
        ),
        (Format::Webp, _) => decode_with_image(
            WebPDecoder::new(Cursor::new(bytes))
                .and_then(|mut decoder| decoder.set_limits(limits()).map(|()| decoder)),
            Internal::RgbaFrame,
        ),
    }));
    let decoded = decoded.map_err(|_| Failure::Corrupt)??;
    let pixels = &decoded.pixels;
    let expected =
        u64::from(pixels.width) * u64::from(pixels.height) * pixels.layout.channels() as u64;
    if pixels.width == 0 || pixels.height == 0 || pixels.data.len() as u64 != expected {
        return Err(Failure::Corrupt);
    }
    Ok(decoded)
}

/// The DCT scale (in eighths: 1, 2, 4 or 8) that `jpeg-decoder` should decode at: the
/// smallest whose output is at least `need` on both sides.
pub(crate) fn jpeg_scale(width: u32, height: u32, need: (u32, u32)) -> u32 {
    [1, 2, 4]
        .into_iter()
        .find(|&eighths| {
            scaled(width, eighths) >= need.0.min(width)
                && scaled(height, eighths) >= need.1.min(height)
        })
        .unwrap_or(8)
}

/// A side decoded at `eighths`/8, rounded up as `jpeg-decoder` does.
fn scaled(side: u32, eighths: u32) -> u32 {
    (side * eighths).div_ceil(8)
}

/// What `jpeg-decoder` holds at its peak: the coefficients of every block of a progressive
/// image (16 bits × 64 a block, the whole image, whatever the scale), the scaled planes of
/// each component, and the interleaved output.
pub(crate) fn jpeg_memory(width: u32, height: u32, frame: &JpegFrame, eighths: u32) -> u64 {
    let components = &frame.sampling[..frame.count];
    let h_max = u64::from(components.iter().map(|c| c.0).max().unwrap_or(1));
    let v_max = u64::from(components.iter().map(|c| c.1).max().unwrap_or(1));
    let mcus_x = u64::from(width).div_ceil(8 * h_max);
    let mcus_y = u64::from(height).div_ceil(8 * v_max);
    let blocks: u64 = components
        .iter()
        .map(|&(h, v)| mcus_x * u64::from(h) * mcus_y * u64::from(v))
        .sum();
    let coefficients = if frame.progressive {
        blocks * 64 * 2
    } else {
        0
    };
    let side = u64::from(eighths);
    let planes = blocks * side * side;
    let output =
        u64::from(scaled(width, eighths)) * u64::from(scaled(height, eighths)) * frame.count as u64;
    coefficients + planes + output
}

fn check_memory(decoder_bytes: u64) -> Result<(), Failure> {
    let total = decoder_bytes.saturating_add(PIPELINE_RESERVE);
    if total > MAX_MEMORY {
        return Err(Failure::TooMuchMemory { bytes: total });
    }
    Ok(())
}

fn decode_jpeg(
    bytes: &[u8],
    header: &Header,
    frame: JpegFrame,
    need: (u32, u32),
) -> Result<Decoded, Failure> {
    let eighths = jpeg_scale(header.width, header.height, need);
    check_memory(jpeg_memory(header.width, header.height, &frame, eighths))?;

    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    decoder.read_info().map_err(jpeg_failure)?;
    let (width, height) = (
        scaled(header.width, eighths),
        scaled(header.height, eighths),
    );
    // Asking for exactly the scaled size picks exactly that scale.
    let request = (u16::try_from(width), u16::try_from(height));
    let (Ok(request_w), Ok(request_h)) = request else {
        return Err(Failure::Corrupt);
    };
    let (out_w, out_h) = decoder.scale(request_w, request_h).map_err(jpeg_failure)?;
    let mut data = decoder.decode().map_err(jpeg_failure)?;
    let info = decoder.info().ok_or(Failure::Corrupt)?;
    let layout = match info.pixel_format {
        PixelFormat::L8 => Layout::Grey,
        PixelFormat::RGB24 => Layout::Rgb,
        PixelFormat::CMYK32 => {
            cmyk_to_rgb(&mut data);
            Layout::Rgb
        }
        PixelFormat::L16 => return Err(Failure::Unsupported("16-bit JPEG")),
    };
    Ok(Decoded {
        pixels: Pixels {
            width: u32::from(out_w),
            height: u32::from(out_h),
            layout,
            data,
        },
        exif: read_exif(decoder.exif_data()),
    })
}

fn jpeg_failure(error: jpeg_decoder::Error) -> Failure {
    match error {
        jpeg_decoder::Error::Io(error) => io_failure(&error),
        jpeg_decoder::Error::Unsupported(_) => Failure::Unsupported("a JPEG coding option"),
        _ => Failure::Corrupt,
    }
}

fn io_failure(error: &io::Error) -> Failure {
    if error.kind() == io::ErrorKind::UnexpectedEof {
        Failure::Truncated
    } else {
        Failure::Corrupt
    }
}

fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_MEMORY);
    limits
}

/// What a decoder allocates beside the output buffer.
enum Internal {
    /// The png decoder: a few rows (the current and previous one, and the inflate window).
    Rows,
    /// image-webp: lossless frames and animation canvases go through an RGBA buffer of
    /// its own (a lossy frame's YUV planes are smaller).
    RgbaFrame,
}

/// PNG and WebP: the `image` crate's decoders read the header, we check the memory, then
/// decode the first frame into a buffer we allocated.
fn decode_with_image<D: ImageDecoder>(
    decoder: Result<D, ImageError>,
    internal: Internal,
) -> Result<Decoded, Failure> {
    let mut decoder = decoder.map_err(image_failure)?;
    let (width, height) = decoder.dimensions();
    let color = decoder.color_type();
    let bytes = decoder.total_bytes();
    let internal = match internal {
        Internal::Rows => u64::from(width) * 8 * 4 + 64 * 1024,
        Internal::RgbaFrame => u64::from(width) * u64::from(height) * 4,
    };
    check_memory(bytes.saturating_add(internal))?;
    let exif = read_exif(decoder.exif_metadata().ok().flatten().as_deref());
    let (layout, wide) = match color {
        ColorType::L8 => (Layout::Grey, false),
        ColorType::La8 => (Layout::GreyAlpha, false),
        ColorType::Rgb8 => (Layout::Rgb, false),
        ColorType::Rgba8 => (Layout::Rgba, false),
        ColorType::L16 => (Layout::Grey, true),
        ColorType::La16 => (Layout::GreyAlpha, true),
        ColorType::Rgb16 => (Layout::Rgb, true),
        ColorType::Rgba16 => (Layout::Rgba, true),
        _ => return Err(Failure::Unsupported("a colour type")),
    };
    let mut data = vec![0u8; usize::try_from(bytes).map_err(|_| Failure::Corrupt)?];
    decoder.read_image(&mut data).map_err(image_failure)?;
    if wide {
        strip_16_bits(&mut data);
    }
    Ok(Decoded {
        pixels: Pixels {
            width,
            height,
            layout,
            data,
        },
        exif,
    })
}

fn image_failure(error: ImageError) -> Failure {
    match error {
        ImageError::IoError(error) => io_failure(&error),
        ImageError::Limits(_) => Failure::TooMuchMemory { bytes: MAX_MEMORY },
        ImageError::Unsupported(_) => Failure::Unsupported("an image option"),
        ImageError::Decoding(error) => {
            // The PNG and WebP decoders report a short file as a decoding error whose
            // cause is an unexpected end of input.
            let text = error.to_string().to_ascii_lowercase();
            if text.contains("end of") || text.contains("eof") || text.contains("truncated") {
                Failure::Truncated
            } else {
                Failure::Corrupt
            }
        }
        _ => Failure::Corrupt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FOUR_TWO_ZERO: JpegFrame = JpegFrame {
        progressive: false,
        sampling: [(2, 2), (1, 1), (1, 1), (1, 1)],
        count: 3,
    };

    #[test]
    fn the_scale_is_the_smallest_that_covers_the_need() {
        // 4224 × 3168, the large variant needs 1920 × 1440: half size is 2112 × 1584.
        assert_eq!(jpeg_scale(4224, 3168, (1920, 1440)), 4);
        assert_eq!(jpeg_scale(4224, 3168, (1000, 750)), 2);
        assert_eq!(jpeg_scale(4224, 3168, (400, 300)), 1);
        assert_eq!(jpeg_scale(4224, 3168, (2200, 1650)), 8);
        // A need beyond the image (a small photo) is the image itself.
        assert_eq!(jpeg_scale(640, 480, (640, 480)), 8);
        assert_eq!(jpeg_scale(640, 480, (100, 100)), 2);
    }

    #[test]
    fn progressive_jpegs_cost_their_coefficients() {
        let baseline = jpeg_memory(4224, 3168, &FOUR_TWO_ZERO, 4);
        let progressive = jpeg_memory(
            4224,
            3168,
            &JpegFrame {
                progressive: true,
                ..FOUR_TWO_ZERO
            },
            4,
        );
        // 13.4 MP at 4:2:0 is 1.5 samples a pixel: 40 MB of coefficients.
        assert!(baseline < 16_000_000, "{baseline}");
        assert!(
            (40_000_000..45_000_000).contains(&(progressive - baseline)),
            "{progressive}"
        );
    }

    #[test]
    fn the_ceiling_admits_a_big_baseline_photo_and_refuses_a_huge_progressive_one() {
        let big = jpeg_memory(
            8660,
            5773,
            &FOUR_TWO_ZERO,
            jpeg_scale(8660, 5773, (1920, 1280)),
        );
        assert!(check_memory(big).is_ok());
        let four_four_four = JpegFrame {
            progressive: true,
            sampling: [(1, 1); 4],
            count: 3,
        };
        let huge = jpeg_memory(8660, 5773, &four_four_four, 2);
        assert!(matches!(
            check_memory(huge),
            Err(Failure::TooMuchMemory { .. })
        ));
    }
}
