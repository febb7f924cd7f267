//! The pure image pipeline behind media uploads: bytes in, three metadata-free WebP
//! variants out. No I/O, no async, no storage: the `media` crate fetches the original,
//! runs [`process`] on a blocking thread of a bounded pool, and stores what comes back.
//!
//! [`process`] runs, in order:
//!
//! 1. the guards, all before any decoder sees the bytes: at most [`MAX_BYTES`]; the format
//!    by magic bytes only ([`sniff`]), which must be the one the upload claimed; at most
//!    [`MAX_PIXELS`] as declared by the header (read by hand, so a decompression bomb is
//!    refused from its first bytes); and an estimate of the decoder's working memory under
//!    [`MAX_MEMORY`];
//! 2. decoding with shrink-on-load: a JPEG is decoded at the smallest DCT scale (1/8, 1/4,
//!    1/2 or 1) that still covers the largest variant; PNG and WebP whole, first frame only
//!    for APNG and animated WebP; grey, CMYK, 16-bit and palette images become 8-bit grey
//!    or RGB, with alpha kept when there is any;
//! 3. EXIF, read for its orientation (all eight) and the time the photo was taken, then
//!    dropped with every other piece of metadata (GPS, XMP, ICC): the variants are encoded
//!    from bare pixels;
//! 4. the variants ([`VARIANTS`]): `thumbnail` 100×100 (fill, then centre crop), `medium`
//!    inside 800×800 and `large` inside 1920×1920, never enlarged, resampled with Lanczos3
//!    in a cascade (large from the decoded image, medium from large, the thumbnail from the
//!    smallest of those that is still big enough), turned upright, and encoded as lossy
//!    WebP at [`WEBP_QUALITY`].
//!
//! Every refusal is a [`Failure`] with a stable [`Failure::reason`]; hostile input gives
//! a failure, never a panic or an allocation past the ceiling.

mod decode;
mod encode;
mod failure;
mod metadata;
mod pixels;
mod resize;
mod sniff;

use fast_image_resize::Resizer;

pub use encode::{WEBP_METHOD, WEBP_QUALITY};
pub use failure::Failure;
pub use sniff::{SNIFF_LEN, sniff};

use crate::decode::{decode, jpeg_scale};
use crate::pixels::{Pixels, for_webp, orient, swaps_sides};
use crate::resize::{cover_need, fit, resample};

/// The largest original accepted, in bytes (20 MiB).
pub const MAX_BYTES: u64 = 20 * 1024 * 1024;

/// The most pixels an original may declare (width × height, 50 megapixels).
pub const MAX_PIXELS: u64 = 50_000_000;

/// The ceiling on the memory one [`process`] call may need (256 MiB): the decoder's
/// buffers as estimated from the header, plus a fixed reserve for the variants and the
/// WebP encoder. Within [`MAX_PIXELS`] it refuses only the costliest kinds, since a
/// progressive JPEG keeps the 16-bit coefficients of the whole image: progressive JPEGs
/// above about 29 MP without chroma subsampling, 41 MP at 4:2:2, 21 MP in CMYK (4:2:0
/// and every baseline JPEG pass up to 50 MP); 16-bit PNGs above 36 MP (RGB) or 27 MP
/// (RGBA); WebPs above 27–31 MP (image-webp decodes through an RGBA frame of its own).
pub const MAX_MEMORY: u64 = 256 * 1024 * 1024;

/// The formats accepted for originals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    Jpeg,
    Png,
    Webp,
}

impl Format {
    /// `"jpeg"`, `"png"` or `"webp"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Jpeg => "jpeg",
            Format::Png => "png",
            Format::Webp => "webp",
        }
    }

    /// The IANA media type.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Webp => "image/webp",
        }
    }

    /// The format a `Content-Type` names (case-insensitive, parameters ignored; the
    /// common misspelling `image/jpg` is taken as JPEG). `None` for anything else,
    /// `image/svg+xml` and `image/gif` included.
    pub fn from_content_type(content_type: &str) -> Option<Format> {
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        [
            ("image/jpeg", Format::Jpeg),
            ("image/jpg", Format::Jpeg),
            ("image/png", Format::Png),
            ("image/webp", Format::Webp),
        ]
        .into_iter()
        .find(|(name, _)| essence.eq_ignore_ascii_case(name))
        .map(|(_, format)| format)
    }
}

/// One size the pipeline makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VariantSpec {
    /// `thumbnail`, `medium` or `large`.
    pub name: &'static str,
    /// The side of the square box the variant is fitted into (or, with `crop`, fills).
    pub bound: u32,
    /// Fill the box and cut the overflow around the centre, giving exactly
    /// `bound × bound` (enlarging a smaller original); otherwise fit inside the box,
    /// never enlarged.
    pub crop: bool,
}

/// The variants, in the order [`Processed::variants`] holds them.
pub const VARIANTS: [VariantSpec; 3] = [
    VariantSpec {
        name: "thumbnail",
        bound: 100,
        crop: true,
    },
    VariantSpec {
        name: "medium",
        bound: 800,
        crop: false,
    },
    VariantSpec {
        name: "large",
        bound: 1920,
        crop: false,
    },
];

/// One encoded variant.
#[derive(Clone, PartialEq, Eq)]
pub struct Variant {
    pub name: &'static str,
    /// As displayed (after the EXIF orientation).
    pub width: u32,
    pub height: u32,
    /// A lossy WebP file without metadata chunks.
    pub webp: Vec<u8>,
}

impl std::fmt::Debug for Variant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Variant")
            .field("name", &self.name)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("webp_bytes", &self.webp.len())
            .finish()
    }
}

/// What [`process`] makes of an original.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Processed {
    pub format: Format,
    /// Of the original as displayed, i.e. after orientation.
    pub width: u32,
    pub height: u32,
    /// EXIF DateTimeOriginal, else DateTime: the camera's local time, no zone.
    pub taken_at: Option<time::PrimitiveDateTime>,
    /// thumbnail, medium, large in that order (see [`VARIANTS`]).
    pub variants: Vec<Variant>,
}

/// What the guards learn from an original without decoding it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inspection {
    pub format: Format,
    /// As stored, before any EXIF orientation.
    pub width: u32,
    pub height: u32,
}

/// Runs every guard of [`process`] but the memory estimate, without decoding: size,
/// magic bytes against the claimed format, header dimensions against [`MAX_PIXELS`].
/// Cheap enough for the request that confirms an upload.
pub fn inspect(bytes: &[u8], claimed: Format) -> Result<Inspection, Failure> {
    let size = bytes.len() as u64;
    if size > MAX_BYTES {
        return Err(Failure::TooLarge { bytes: size });
    }
    let format = sniff(bytes).ok_or(Failure::NotAnImage)?;
    if format != claimed {
        return Err(Failure::mismatch(claimed, format));
    }
    let header = sniff::read_header(bytes, format)?;
    if u64::from(header.width) * u64::from(header.height) > MAX_PIXELS {
        return Err(Failure::TooManyPixels {
            width: header.width,
            height: header.height,
        });
    }
    Ok(Inspection {
        format,
        width: header.width,
        height: header.height,
    })
}

/// Turns an original into its three WebP variants.
///
/// CPU-bound and synchronous: the caller runs it on a blocking thread with a bounded pool
/// (each call may hold up to [`MAX_MEMORY`]).
pub fn process(bytes: &[u8], claimed: Format) -> Result<Processed, Failure> {
    let Inspection {
        format,
        width,
        height,
    } = inspect(bytes, claimed)?;
    let header = sniff::read_header(bytes, format)?;
    let large = VARIANTS[2];
    let thumbnail = VARIANTS[0];
    let fitted = fit(width, height, large.bound);
    let cover = cover_need(width, height, thumbnail.bound);
    let need = (fitted.0.max(cover.0), fitted.1.max(cover.1));
    let decoded = decode(bytes, format, &header, need)?;
    let source = decoded.pixels;
    let expected = match format {
        Format::Jpeg => {
            let eighths = jpeg_scale(width, height, need);
            (
                (width * eighths).div_ceil(8),
                (height * eighths).div_ceil(8),
            )
        }
        Format::Png | Format::Webp => (width, height),
    };
    if (source.width, source.height) != expected {
        return Err(Failure::Corrupt);
    }

    let mut resizer = Resizer::new();
    let large = sized(&mut resizer, &source, fitted)?;
    let medium = sized(&mut resizer, &large, fit(width, height, VARIANTS[1].bound))?;
    let thumbnail_from = [&medium, &large]
        .into_iter()
        .find(|p| p.width >= cover.0 && p.height >= cover.1)
        .unwrap_or(&source);
    let side = thumbnail.bound;
    let thumbnail = resample(&mut resizer, thumbnail_from, side, side, true)?;
    drop(source);

    let orientation = decoded.exif.orientation;
    let variants = [thumbnail, medium, large]
        .into_iter()
        .zip(VARIANTS)
        .map(|(pixels, spec)| {
            let upright = for_webp(orient(pixels, orientation));
            Ok(Variant {
                name: spec.name,
                width: upright.width,
                height: upright.height,
                webp: encode::encode_webp(&upright)?,
            })
        })
        .collect::<Result<Vec<_>, Failure>>()?;
    let (width, height) = if swaps_sides(orientation) {
        (height, width)
    } else {
        (width, height)
    };
    Ok(Processed {
        format,
        width,
        height,
        taken_at: decoded.exif.taken_at,
        variants,
    })
}

/// `source` resampled to `size`, or copied when it already is that size.
fn sized(resizer: &mut Resizer, source: &Pixels, size: (u32, u32)) -> Result<Pixels, Failure> {
    if (source.width, source.height) == size {
        Ok(source.clone())
    } else {
        resample(resizer, source, size.0, size.1, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_round_trip() {
        for format in [Format::Jpeg, Format::Png, Format::Webp] {
            assert_eq!(
                Format::from_content_type(format.content_type()),
                Some(format)
            );
        }
        assert_eq!(
            Format::from_content_type("IMAGE/JPG; charset=x"),
            Some(Format::Jpeg)
        );
        assert_eq!(Format::from_content_type("image/svg+xml"), None);
        assert_eq!(Format::from_content_type("image/gif"), None);
        assert_eq!(Format::from_content_type(""), None);
    }

    #[test]
    fn size_and_format_are_checked_before_anything_else() {
        let big = vec![0u8; MAX_BYTES as usize + 1];
        assert_eq!(
            process(&big, Format::Jpeg).err().map(|f| f.reason()),
            Some("too_large")
        );
        let text = b"hello, this is not an image";
        assert_eq!(
            process(text, Format::Png).err().map(|f| f.reason()),
            Some("not_an_image")
        );
    }
}
