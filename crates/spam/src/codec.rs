//! The stored form of a [`Model`]: compact, versioned and checked, for a database BLOB.
//!
//! Layout (integers as unsigned LEB128 varints unless said otherwise):
//!
//! | field | |
//! |---|---|
//! | magic | `MSPM` |
//! | version | one byte, [`VERSION`] |
//! | ham examples, spam examples | varints |
//! | bias | `f64`, little-endian |
//! | feature count | varint |
//! | per feature, by ascending hash | the hash's distance from the previous one (varint), its weight (`f32`, little-endian) |
//! | checksum | FNV-1a 64 of everything before it, little-endian |
//!
//! The version covers the feature extraction too: a model is only meaningful with the features
//! it was trained on, so changing either means a new version, and an old model is refused
//! (train a new one) rather than misread. The checksum turns truncation and flipped bytes into
//! an error instead of a quietly different model.

use crate::features::hash;
use crate::model::Model;

const MAGIC: &[u8; 4] = b"MSPM";
const VERSION: u8 = 1;
const CHECKSUM_BYTES: usize = 8;
/// The fewest bytes one feature can take: a one-byte distance and its weight.
const MIN_FEATURE_BYTES: usize = 5;

/// Why bytes could not be read as a [`Model`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("not a spam model (wrong magic bytes)")]
    NotAModel,
    #[error("spam model version {0} is not supported (this build reads version {VERSION})")]
    UnsupportedVersion(u8),
    #[error("spam model is truncated")]
    Truncated,
    #[error("spam model is corrupt: {0}")]
    Corrupt(&'static str),
}

impl Model {
    /// A compact, versioned serialisation (for a database BLOB) that [`Model::from_bytes`]
    /// reads back; the same model always gives the same bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut features: Vec<(u64, f32)> = self
            .weights
            .iter()
            .map(|(&feature, &weight)| (feature, weight))
            .collect();
        features.sort_unstable_by_key(|&(feature, _)| feature);
        let mut out = Vec::with_capacity(32 + features.len() * 12);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        put_varint(&mut out, self.ham_examples);
        put_varint(&mut out, self.spam_examples);
        out.extend_from_slice(&self.bias.to_le_bytes());
        put_varint(&mut out, features.len() as u64);
        let mut previous = 0u64;
        for (feature, weight) in features {
            put_varint(&mut out, feature - previous);
            out.extend_from_slice(&weight.to_le_bytes());
            previous = feature;
        }
        let checksum = hash(0, &out);
        out.extend_from_slice(&checksum.to_le_bytes());
        out
    }

    /// Reads a model written by [`Model::to_bytes`]. Anything else (truncated, altered,
    /// another version, random bytes) is an error, never a panic.
    pub fn from_bytes(bytes: &[u8]) -> Result<Model, ModelError> {
        let mut reader = Reader { bytes };
        if reader.take(MAGIC.len())? != MAGIC {
            return Err(ModelError::NotAModel);
        }
        let version = reader.byte()?;
        if version != VERSION {
            return Err(ModelError::UnsupportedVersion(version));
        }
        let (body, stored) = bytes
            .split_last_chunk::<CHECKSUM_BYTES>()
            .ok_or(ModelError::Truncated)?;
        if body.len() < MAGIC.len() + 1 {
            return Err(ModelError::Truncated);
        }
        if hash(0, body) != u64::from_le_bytes(*stored) {
            return Err(ModelError::Corrupt("checksum mismatch"));
        }
        let mut reader = Reader {
            bytes: body.get(MAGIC.len() + 1..).unwrap_or_default(),
        };
        let ham_examples = reader.varint()?;
        let spam_examples = reader.varint()?;
        let bias = f64::from_le_bytes(reader.array()?);
        if !bias.is_finite() {
            return Err(ModelError::Corrupt("bias is not a number"));
        }
        let count = reader.varint()?;
        if count > (reader.bytes.len() / MIN_FEATURE_BYTES) as u64 {
            return Err(ModelError::Truncated);
        }
        let mut weights = rustc_hash::FxHashMap::default();
        weights.reserve(count as usize);
        let mut previous: Option<u64> = None;
        for _ in 0..count {
            let distance = reader.varint()?;
            let feature = match previous {
                None => distance,
                Some(_) if distance == 0 => {
                    return Err(ModelError::Corrupt("features out of order"));
                }
                Some(previous) => previous
                    .checked_add(distance)
                    .ok_or(ModelError::Corrupt("feature hash out of range"))?,
            };
            let weight = f32::from_le_bytes(reader.array()?);
            if !weight.is_finite() {
                return Err(ModelError::Corrupt("weight is not a number"));
            }
            weights.insert(feature, weight);
            previous = Some(feature);
        }
        if !reader.bytes.is_empty() {
            return Err(ModelError::Corrupt("trailing bytes"));
        }
        Ok(Model {
            weights,
            bias,
            ham_examples,
            spam_examples,
        })
    }
}

/// Appends `value` as an unsigned LEB128 varint.
fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value & 0x7f) as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A cursor over stored bytes; every read checks the length.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, length: usize) -> Result<&'a [u8], ModelError> {
        let (taken, rest) = self
            .bytes
            .split_at_checked(length)
            .ok_or(ModelError::Truncated)?;
        self.bytes = rest;
        Ok(taken)
    }

    fn byte(&mut self) -> Result<u8, ModelError> {
        self.take(1)?.first().copied().ok_or(ModelError::Truncated)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ModelError> {
        self.take(N)?.try_into().map_err(|_| ModelError::Truncated)
    }

    /// An unsigned LEB128 varint of at most ten bytes that fits in a `u64`.
    fn varint(&mut self) -> Result<u64, ModelError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(ModelError::Corrupt("varint out of range"));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ModelError::Corrupt("varint too long"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_model() -> Model {
        Model::train([
            ("free money click here http://spam.example", true),
            ("free prize, DM me http://spam.example", true),
            ("この曲最高", false),
            ("この曲好き", false),
        ])
    }

    #[test]
    fn varints_round_trip_at_their_edges() {
        for value in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut bytes = Vec::new();
            put_varint(&mut bytes, value);
            let mut reader = Reader { bytes: &bytes };
            assert_eq!(reader.varint(), Ok(value));
            assert!(reader.bytes.is_empty());
        }
    }

    #[test]
    fn overlong_varints_are_refused() {
        let mut reader = Reader { bytes: &[0xff; 11] };
        assert!(reader.varint().is_err());
        let mut reader = Reader {
            bytes: &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
        };
        assert_eq!(
            reader.varint(),
            Err(ModelError::Corrupt("varint out of range"))
        );
    }

    #[test]
    fn the_same_model_gives_the_same_bytes() {
        assert_eq!(tiny_model().to_bytes(), tiny_model().to_bytes());
        assert_eq!(
            Model::from_bytes(&tiny_model().to_bytes()),
            Ok(tiny_model())
        );
    }

    #[test]
    fn every_flipped_byte_is_caught() {
        let bytes = tiny_model().to_bytes();
        for index in 0..bytes.len() {
            let mut altered = bytes.clone();
            altered[index] ^= 0x10;
            assert!(Model::from_bytes(&altered).is_err(), "byte {index}");
        }
    }

    #[test]
    fn other_versions_and_other_blobs_are_named() {
        let mut bytes = tiny_model().to_bytes();
        bytes[4] = 2;
        assert_eq!(
            Model::from_bytes(&bytes),
            Err(ModelError::UnsupportedVersion(2))
        );
        assert_eq!(
            Model::from_bytes(b"PNG\x89 not a model"),
            Err(ModelError::NotAModel)
        );
        assert_eq!(Model::from_bytes(b"MS"), Err(ModelError::Truncated));
    }
}
