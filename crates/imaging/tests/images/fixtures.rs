//! Test inputs built in code, so no binary fixture is committed: JPEGs with an EXIF, XMP
//! and ICC segment spliced in, a hand-made CMYK JPEG, PNGs of every colour type, an APNG,
//! an animated WebP, and helpers to read the variants back.

use image::codecs::jpeg::JpegEncoder;
use image::{ExtendedColorType, ImageFormat, RgbaImage};

/// An RGB picture, `width × height`, coloured by `paint(x, y)`.
pub fn rgb(width: u32, height: u32, paint: impl Fn(u32, u32) -> [u8; 3]) -> Vec<u8> {
    (0..height)
        .flat_map(|y| (0..width).map(move |x| (x, y)))
        .flat_map(|(x, y)| paint(x, y))
        .collect()
}

pub fn jpeg_rgb(width: u32, height: u32, paint: impl Fn(u32, u32) -> [u8; 3]) -> Vec<u8> {
    let mut out = Vec::new();
    let pixels = rgb(width, height, paint);
    JpegEncoder::new_with_quality(&mut out, 92)
        .encode(&pixels, width, height, ExtendedColorType::Rgb8)
        .expect("encode a JPEG fixture");
    out
}

pub fn jpeg_grey(width: u32, height: u32, paint: impl Fn(u32, u32) -> u8) -> Vec<u8> {
    let pixels: Vec<u8> = (0..height)
        .flat_map(|y| (0..width).map(move |x| (x, y)))
        .map(|(x, y)| paint(x, y))
        .collect();
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 92)
        .encode(&pixels, width, height, ExtendedColorType::L8)
        .expect("encode a grey JPEG fixture");
    out
}

/// `jpeg` with extra marker segments inserted right after SOI (and after a JFIF APP0,
/// if there is one, as cameras do).
pub fn with_segments(jpeg: &[u8], segments: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut at = 2;
    if jpeg[2..4] == [0xFF, 0xE0] {
        at = 4 + usize::from(u16::from_be_bytes([jpeg[4], jpeg[5]]));
    }
    let mut out = jpeg[..at].to_vec();
    for (marker, payload) in segments {
        out.extend_from_slice(&[0xFF, *marker]);
        out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(payload);
    }
    out.extend_from_slice(&jpeg[at..]);
    out
}

/// One TIFF IFD entry: tag, type (2 ASCII, 3 SHORT, 4 LONG, 5 RATIONAL) and its bytes.
pub struct Entry {
    pub tag: u16,
    pub kind: u16,
    pub count: u32,
    pub data: Vec<u8>,
}

pub fn short(tag: u16, value: u16) -> Entry {
    Entry {
        tag,
        kind: 3,
        count: 1,
        data: value.to_le_bytes().to_vec(),
    }
}

pub fn ascii(tag: u16, text: &str) -> Entry {
    let mut data = text.as_bytes().to_vec();
    data.push(0);
    Entry {
        tag,
        kind: 2,
        count: data.len() as u32,
        data,
    }
}

pub fn rationals(tag: u16, values: &[(u32, u32)]) -> Entry {
    Entry {
        tag,
        kind: 5,
        count: values.len() as u32,
        data: values
            .iter()
            .flat_map(|(n, d)| n.to_le_bytes().into_iter().chain(d.to_le_bytes()))
            .collect(),
    }
}

/// A little-endian TIFF block: IFD0 with `primary`, an Exif sub-IFD with `exif` and a
/// GPS sub-IFD with `gps` (each sub-IFD only when not empty).
pub fn tiff(primary: Vec<Entry>, exif: Vec<Entry>, gps: Vec<Entry>) -> Vec<u8> {
    // Lay the IFDs out one after another, each followed by the data that does not fit
    // in its entries; sub-IFD pointers are fixed up once their offsets are known.
    let mut primary = primary;
    let exif_at = primary.len();
    if !exif.is_empty() {
        primary.push(Entry {
            tag: 0x8769,
            kind: 4,
            count: 1,
            data: vec![0; 4],
        });
    }
    let gps_at = primary.len();
    if !gps.is_empty() {
        primary.push(Entry {
            tag: 0x8825,
            kind: 4,
            count: 1,
            data: vec![0; 4],
        });
    }
    let mut out = b"II*\0\x08\0\0\0".to_vec();
    let pointer_slot = |ifd_start: usize, index: usize| ifd_start + 2 + 12 * index + 8;
    let primary_start = write_ifd(&mut out, &primary);
    for (entries, index) in [(&exif, exif_at), (&gps, gps_at)] {
        if entries.is_empty() {
            continue;
        }
        let start = write_ifd(&mut out, entries) as u32;
        let slot = pointer_slot(primary_start, index);
        out[slot..slot + 4].copy_from_slice(&start.to_le_bytes());
    }
    out
}

fn write_ifd(out: &mut Vec<u8>, entries: &[Entry]) -> usize {
    let start = out.len();
    let mut data_at = start + 2 + 12 * entries.len() + 4;
    let mut tail = Vec::new();
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for entry in entries {
        out.extend_from_slice(&entry.tag.to_le_bytes());
        out.extend_from_slice(&entry.kind.to_le_bytes());
        out.extend_from_slice(&entry.count.to_le_bytes());
        if entry.data.len() <= 4 {
            let mut inline = entry.data.clone();
            inline.resize(4, 0);
            out.extend_from_slice(&inline);
        } else {
            out.extend_from_slice(&(data_at as u32).to_le_bytes());
            tail.extend_from_slice(&entry.data);
            if tail.len() % 2 == 1 {
                tail.push(0);
            }
            data_at = start + 2 + 12 * entries.len() + 4 + tail.len();
        }
    }
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&tail);
    start
}

/// An APP1 EXIF segment payload for `tiff`.
pub fn exif_segment(tiff: Vec<u8>) -> (u8, Vec<u8>) {
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend(tiff);
    (0xE1, payload)
}

/// A JPEG as a phone would upload it: orientation, a capture time, GPS, XMP and an ICC
/// profile, around `jpeg`.
pub fn with_camera_metadata(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let tiff = tiff(
        vec![
            short(0x0112, orientation),
            ascii(0x010F, "FixtureCam"),
            ascii(0x0132, "2024:01:02 03:04:05"),
        ],
        vec![ascii(0x9003, "2023:07:14 18:30:45")],
        vec![
            ascii(0x0001, "N"),
            rationals(0x0002, &[(35, 1), (39, 1), (2900, 100)]),
            ascii(0x0003, "E"),
            rationals(0x0004, &[(139, 1), (44, 1), (2800, 100)]),
        ],
    );
    let mut xmp = b"http://ns.adobe.com/xap/1.0/\0".to_vec();
    xmp.extend_from_slice(
        br#"<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description exif:GPSLatitude="35,39.48N" SECRET-XMP-MARK/></rdf:RDF></x:xmpmeta>"#,
    );
    let mut icc = b"ICC_PROFILE\0\x01\x01".to_vec();
    icc.extend_from_slice(b"SECRET-ICC-MARK fake profile body");
    with_segments(jpeg, &[exif_segment(tiff), (0xE1, xmp), (0xE2, icc)])
}

/// A baseline JPEG with four components (CMYK, Adobe-inverted as Photoshop writes it),
/// made by hand: every 8 × 8 block is flat, so each block is one DC value and an
/// end-of-block. `paint` gives the ink (C, M, Y, K) of each block.
pub fn jpeg_cmyk(blocks_x: u16, blocks_y: u16, paint: impl Fn(u16, u16) -> [u8; 4]) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8];
    let mut segment = |marker: u8, payload: &[u8]| {
        out.extend_from_slice(&[0xFF, marker]);
        out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(payload);
    };
    // APP14 Adobe, transform 0: the samples are CMYK, not YCCK.
    segment(0xEE, b"Adobe\0\x64\0\0\0\0\0");
    // One quantisation table of ones.
    let mut dqt = vec![0u8];
    dqt.extend_from_slice(&[1; 64]);
    segment(0xDB, &dqt);
    let (width, height) = (blocks_x * 8, blocks_y * 8);
    let mut sof = vec![8];
    sof.extend_from_slice(&height.to_be_bytes());
    sof.extend_from_slice(&width.to_be_bytes());
    sof.push(4);
    for id in 1..=4 {
        sof.extend_from_slice(&[id, 0x11, 0]);
    }
    segment(0xC0, &sof);
    // DC table: categories 0–11, all four-bit codes (0000 = category 0, …). AC table: one
    // one-bit code, for end-of-block.
    let mut dht = vec![0x00, 0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    dht.extend(0..12u8);
    dht.extend_from_slice(&[0x10, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00]);
    segment(0xC4, &dht);
    segment(0xDA, &[4, 1, 0x00, 2, 0x00, 3, 0x00, 4, 0x00, 0, 63, 0]);
    let mut bits = BitWriter::default();
    let mut previous = [0i32; 4];
    for by in 0..blocks_y {
        for bx in 0..blocks_x {
            let ink = paint(bx, by);
            for (c, predicted) in previous.iter_mut().enumerate() {
                // Adobe stores 255 − ink; the DC of a flat block is 8 × (sample − 128).
                let dc = (i32::from(255 - ink[c]) - 128) * 8;
                bits.dc(dc - *predicted);
                *predicted = dc;
                bits.put(0, 1); // end of block
            }
        }
    }
    out.extend(bits.finish());
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    current: u32,
    used: u32,
}

impl BitWriter {
    fn put(&mut self, value: u32, count: u32) {
        for i in (0..count).rev() {
            self.current = (self.current << 1) | ((value >> i) & 1);
            self.used += 1;
            if self.used == 8 {
                let byte = self.current as u8;
                self.bytes.push(byte);
                if byte == 0xFF {
                    self.bytes.push(0x00);
                }
                self.current = 0;
                self.used = 0;
            }
        }
    }

    fn dc(&mut self, diff: i32) {
        let category = 32 - diff.unsigned_abs().leading_zeros();
        self.put(category, 4);
        if category > 0 {
            let magnitude = if diff < 0 { diff - 1 } else { diff };
            self.put(magnitude as u32 & ((1 << category) - 1), category);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        while self.used != 0 {
            self.put(1, 1);
        }
        self.bytes
    }
}

/// A PNG through the `png` crate, with any colour type and bit depth; `data` is packed as
/// PNG wants it (16-bit samples big-endian).
pub fn png(
    width: u32,
    height: u32,
    color: png::ColorType,
    depth: png::BitDepth,
    palette: Option<(&[u8], &[u8])>,
    data: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(color);
    encoder.set_depth(depth);
    if let Some((palette, transparency)) = palette {
        encoder.set_palette(palette.to_vec());
        encoder.set_trns(transparency.to_vec());
    }
    let mut writer = encoder.write_header().expect("png header");
    writer.write_image_data(data).expect("png data");
    writer.finish().expect("png end");
    out
}

/// An APNG of `frames`, each a flat RGBA colour filling the whole canvas.
pub fn apng(width: u32, height: u32, frames: &[[u8; 4]]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    encoder
        .set_animated(frames.len() as u32, 0)
        .expect("animation control");
    let mut writer = encoder.write_header().expect("apng header");
    for colour in frames {
        let data: Vec<u8> = (0..width * height).flat_map(|_| *colour).collect();
        writer.write_image_data(&data).expect("apng frame");
    }
    writer.finish().expect("apng end");
    out
}

/// An animated WebP of `frames`, each a flat RGB colour, 100 ms apart.
pub fn animated_webp(width: u32, height: u32, frames: &[[u8; 3]]) -> Vec<u8> {
    let config = webp::WebPConfig::new().expect("webp config");
    let pictures: Vec<Vec<u8>> = frames
        .iter()
        .map(|colour| (0..width * height).flat_map(|_| *colour).collect())
        .collect();
    let mut encoder = webp::AnimEncoder::new(width, height, &config);
    for (i, picture) in pictures.iter().enumerate() {
        encoder.add_frame(webp::AnimFrame::from_rgb(
            picture,
            width,
            height,
            i as i32 * 100,
        ));
    }
    encoder.try_encode().expect("animated webp").to_vec()
}

/// A still WebP, lossless, RGBA.
pub fn webp_rgba(width: u32, height: u32, paint: impl Fn(u32, u32) -> [u8; 4]) -> Vec<u8> {
    let pixels: Vec<u8> = (0..height)
        .flat_map(|y| (0..width).map(move |x| (x, y)))
        .flat_map(|(x, y)| paint(x, y))
        .collect();
    webp::Encoder::from_rgba(&pixels, width, height)
        .encode_lossless()
        .to_vec()
}

/// A variant read back as RGBA.
pub fn decode_webp(webp: &[u8]) -> RgbaImage {
    image::load_from_memory_with_format(webp, ImageFormat::WebP)
        .expect("a variant decodes")
        .to_rgba8()
}

/// The RIFF chunks of a WebP file, by FourCC.
pub fn riff_chunks(webp: &[u8]) -> Vec<[u8; 4]> {
    assert_eq!(&webp[..4], b"RIFF");
    assert_eq!(&webp[8..12], b"WEBP");
    let declared = u32::from_le_bytes([webp[4], webp[5], webp[6], webp[7]]) as usize;
    assert_eq!(declared + 8, webp.len(), "RIFF size matches the file");
    let mut chunks = Vec::new();
    let mut at = 12;
    while at + 8 <= webp.len() {
        let fourcc = [webp[at], webp[at + 1], webp[at + 2], webp[at + 3]];
        let size = u32::from_le_bytes([webp[at + 4], webp[at + 5], webp[at + 6], webp[at + 7]]);
        chunks.push(fourcc);
        at += 8 + size as usize + (size as usize & 1);
    }
    assert_eq!(at, webp.len(), "chunks end where the file does");
    chunks
}

/// Whether `colour` is within `tolerance` of `want` on every channel.
pub fn near(colour: [u8; 4], want: [u8; 3], tolerance: u8) -> bool {
    colour[..3]
        .iter()
        .zip(want)
        .all(|(&got, want)| got.abs_diff(want) <= tolerance)
}
