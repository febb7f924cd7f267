//! Why an upload could not be turned into variants. Every refusal of [`crate::process`] is
//! one of these, with a sentence a user can read ([`std::fmt::Display`]) and a stable
//! snake_case code ([`Failure::reason`]) that the media domain stores and shows to clients.
//! Causes from the decoders stay out of the text on purpose: they are for logs, not users.

use crate::{Format, MAX_BYTES, MAX_MEMORY, MAX_PIXELS};

/// Why an image was refused. Nothing here is a bug of ours: each variant is a property of
/// the uploaded bytes (or, for [`Failure::Encode`], of libwebp refusing our own request).
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The bytes start like none of the accepted formats (text, SVG, GIF, PDF, …).
    #[error("the file is not a JPEG, PNG or WebP image")]
    NotAnImage,
    /// The bytes are one accepted format and the upload said it was another.
    #[error("the file is a {found} image, but it was uploaded as {claimed}")]
    FormatMismatch {
        /// What the upload claimed.
        claimed: &'static str,
        /// What the magic bytes say.
        found: &'static str,
    },
    /// More bytes than [`MAX_BYTES`].
    #[error("the file is {bytes} bytes; at most {max} are accepted", max = MAX_BYTES)]
    TooLarge {
        /// The size of the upload.
        bytes: u64,
    },
    /// The header declares more than [`MAX_PIXELS`] pixels; refused before anything is
    /// decoded.
    #[error("the image is {width}×{height} pixels; at most {max} pixels are accepted", max = MAX_PIXELS)]
    TooManyPixels {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
    },
    /// Decoding this image would need more working memory than [`MAX_MEMORY`] (a large
    /// progressive or 16-bit image close to the pixel limit).
    #[error("the image would need {bytes} bytes of memory to decode; at most {max} are allowed", max = MAX_MEMORY)]
    TooMuchMemory {
        /// The estimate that was refused.
        bytes: u64,
    },
    /// The file ends before the image does.
    #[error("the image file is cut short")]
    Truncated,
    /// The bytes are damaged or contradict themselves.
    #[error("the image file is damaged")]
    Corrupt,
    /// A valid image that uses a feature we do not decode (arithmetic-coded or 12-bit JPEG,
    /// lossless JPEG, …).
    #[error("the image uses a feature that is not supported ({0})")]
    Unsupported(&'static str),
    /// libwebp could not encode a variant.
    #[error("a variant could not be encoded")]
    Encode,
}

impl Failure {
    /// The stable code of this failure, for storage and clients.
    pub fn reason(&self) -> &'static str {
        match self {
            Failure::NotAnImage => "not_an_image",
            Failure::FormatMismatch { .. } => "format_mismatch",
            Failure::TooLarge { .. } => "too_large",
            Failure::TooManyPixels { .. } => "too_many_pixels",
            Failure::TooMuchMemory { .. } => "too_much_memory",
            Failure::Truncated => "truncated",
            Failure::Corrupt => "corrupt",
            Failure::Unsupported(_) => "unsupported",
            Failure::Encode => "encode_failed",
        }
    }

    /// Every code [`Failure::reason`] can return, for callers that keep a list (an OpenAPI
    /// enum, a database check).
    pub const REASONS: [&'static str; 9] = [
        "not_an_image",
        "format_mismatch",
        "too_large",
        "too_many_pixels",
        "too_much_memory",
        "truncated",
        "corrupt",
        "unsupported",
        "encode_failed",
    ];

    pub(crate) fn mismatch(claimed: Format, found: Format) -> Failure {
        Failure::FormatMismatch {
            claimed: claimed.as_str(),
            found: found.as_str(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_is_listed_and_snake_case() {
        let all = [
            Failure::NotAnImage,
            Failure::mismatch(Format::Jpeg, Format::Png),
            Failure::TooLarge { bytes: 1 },
            Failure::TooManyPixels {
                width: 1,
                height: 1,
            },
            Failure::TooMuchMemory { bytes: 1 },
            Failure::Truncated,
            Failure::Corrupt,
            Failure::Unsupported("x"),
            Failure::Encode,
        ];
        let reasons: Vec<_> = all.iter().map(Failure::reason).collect();
        assert_eq!(reasons, Failure::REASONS);
        for reason in reasons {
            assert!(reason.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        }
    }

    #[test]
    fn mismatch_reads_well() {
        let text = Failure::mismatch(Format::Png, Format::Jpeg).to_string();
        assert_eq!(text, "the file is a jpeg image, but it was uploaded as png");
    }
}
