//! Variant geometry and resampling. Sizes are worked out from the original's dimensions
//! (not the DCT-scaled ones), so a variant is the same size whatever scale the decoder
//! used; resampling is `fast_image_resize` (SIMD convolution) with Lanczos3.
//!
//! Every box is square, so the geometry is the same in stored and in displayed
//! orientation: the pipeline resizes in stored orientation and turns the small results
//! upright afterwards, which is cheaper than turning the decoded original.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};

use crate::Failure;
use crate::pixels::Pixels;

/// The size of `width × height` fitted inside a `bound × bound` box, never enlarged; the
/// long side becomes `bound`, the short one keeps the aspect ratio (rounded, at least 1).
pub(crate) fn fit(width: u32, height: u32, bound: u32) -> (u32, u32) {
    if width <= bound && height <= bound {
        return (width, height);
    }
    let shorter = |short: u32, long: u32| {
        let scaled = (u64::from(short) * u64::from(bound) + u64::from(long) / 2) / u64::from(long);
        scaled.max(1) as u32
    };
    if width >= height {
        (bound, shorter(height, width))
    } else {
        (shorter(width, height), bound)
    }
}

/// The smallest size a source of `width × height`'s aspect ratio must have for a
/// `side × side` cover crop to be made from it without enlarging (capped at the image).
pub(crate) fn cover_need(width: u32, height: u32, side: u32) -> (u32, u32) {
    let short = width.min(height);
    if short <= side {
        return (width, height);
    }
    let up = |v: u32| (u64::from(v) * u64::from(side)).div_ceil(u64::from(short)) as u32;
    (up(width).min(width), up(height).min(height))
}

/// Resamples `source` to `width × height`. With `crop`, the source is first cut to the
/// target's aspect ratio around its centre (fill, then centre crop); without, the whole
/// source is scaled (the caller keeps the aspect ratio).
pub(crate) fn resample(
    resizer: &mut Resizer,
    source: &Pixels,
    width: u32,
    height: u32,
    crop: bool,
) -> Result<Pixels, Failure> {
    let pixel_type = source.layout.pixel_type();
    let from = ImageRef::new(source.width, source.height, &source.data, pixel_type)
        .map_err(|_| Failure::Corrupt)?;
    let mut to = Image::new(width, height, pixel_type);
    let mut options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    if crop {
        options = options.fit_into_destination(Some((0.5, 0.5)));
    }
    resizer
        .resize(&from, &mut to, &options)
        .map_err(|_| Failure::Corrupt)?;
    Ok(Pixels {
        width,
        height,
        layout: source.layout,
        data: to.into_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pixels::Layout;

    #[test]
    fn fit_keeps_the_aspect_and_never_enlarges() {
        assert_eq!(fit(4224, 3168, 1920), (1920, 1440));
        assert_eq!(fit(3168, 4224, 800), (600, 800));
        assert_eq!(fit(5312, 2988, 1920), (1920, 1080));
        assert_eq!(fit(640, 480, 800), (640, 480));
        assert_eq!(fit(100_000, 3, 800), (800, 1));
        assert_eq!(fit(801, 801, 800), (800, 800));
    }

    #[test]
    fn cover_needs_the_short_side() {
        assert_eq!(cover_need(4000, 3000, 100), (134, 100));
        assert_eq!(cover_need(20_000, 400, 100), (5000, 100));
        assert_eq!(cover_need(80, 60, 100), (80, 60));
    }

    #[test]
    fn a_cover_crop_takes_the_centre() {
        // 4 × 2: left half black, right half white, and a grey middle column pair.
        let source = Pixels {
            width: 4,
            height: 2,
            layout: Layout::Grey,
            data: vec![0, 128, 128, 255, 0, 128, 128, 255],
        };
        let mut resizer = Resizer::new();
        let out = resample(&mut resizer, &source, 2, 2, true);
        let out = out.map(|p| p.data).unwrap_or_default();
        assert_eq!(out, [128, 128, 128, 128]);
    }
}
