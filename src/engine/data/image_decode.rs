//! Image decoding shared by the folder-based datasets: JPEG via `zune-jpeg`, PNG with a
//! small decoder of our own on top of `flate2`. A leaf: it knows files and pixels only.
//!
//! Colour handling follows PIL's `Image.convert("RGB")`: grey is replicated to three
//! channels, alpha is dropped (not composited), palettes are expanded. 16-bit PNG samples
//! keep their high byte.

use super::error::DataError;
use std::io::Read;
use std::path::Path;

/// Largest accepted image side.
const MAX_SIDE: usize = 1 << 14;
/// Image file extensions accepted by the folder datasets.
pub const IMAGE_EXTS: [&str; 3] = ["jpg", "jpeg", "png"];

/// A decoded image: `width×height` RGB, interleaved `H×W×3`.
pub struct Rgb {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

/// Decode a JPEG held in memory into RGB (zune-jpeg 0.5; its 4:2:0 / 4:2:2 chroma
/// upsampling matches libjpeg-turbo's "fancy" upsampling to within rounding, which 0.4 did
/// not at the right image edge).
pub fn decode_jpeg(bytes: &[u8]) -> Result<Rgb, String> {
    // A decoder bug must not take the process down on a hostile file: contain it.
    crate::engine::panics::contain(|| decode_jpeg_inner(bytes))
        .unwrap_or_else(|why| Err(format!("JPEG: the decoder failed on this file ({why})")))
}

fn decode_jpeg_inner(bytes: &[u8]) -> Result<Rgb, String> {
    use zune_jpeg::zune_core::bytestream::ZCursor;
    use zune_jpeg::zune_core::colorspace::ColorSpace;
    use zune_jpeg::zune_core::options::DecoderOptions;
    let opts = DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::RGB)
        .set_max_width(MAX_SIDE)
        .set_max_height(MAX_SIDE)
        .set_strict_mode(true);
    let mut dec = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), opts);
    dec.decode_headers().map_err(|e| format!("JPEG: {e}"))?;
    let info = dec.info().ok_or("JPEG: no header")?;
    let (w, h) = (info.width as usize, info.height as usize);
    let data = dec.decode().map_err(|e| format!("JPEG: {e}"))?;
    let out_cs = dec.output_colorspace().unwrap_or(ColorSpace::RGB);
    let nch = out_cs.num_components();
    if data.len() != w * h * nch {
        return Err(format!(
            "JPEG decoded to {} bytes for {w}×{h}×{nch}",
            data.len()
        ));
    }
    let data = match nch {
        3 => data,
        1 => data.iter().flat_map(|&g| [g, g, g]).collect(),
        n if n > 3 => data
            .chunks_exact(n)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
        n => return Err(format!("JPEG decoded to {n} channels")),
    };
    Ok(Rgb {
        width: w,
        height: h,
        data,
    })
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Undo PNG row filters in place. `raw` holds `rows` rows of `1 + row_bytes` bytes.
fn unfilter(raw: &[u8], rows: usize, row_bytes: usize, bpp: usize) -> Result<Vec<u8>, String> {
    let mut out = vec![0u8; rows * row_bytes];
    for y in 0..rows {
        let src = &raw[y * (row_bytes + 1)..(y + 1) * (row_bytes + 1)];
        let (ft, src) = (src[0], &src[1..]);
        let (done, cur) = out.split_at_mut(y * row_bytes);
        let cur = &mut cur[..row_bytes];
        let prev: &[u8] = if y == 0 {
            &[]
        } else {
            &done[(y - 1) * row_bytes..]
        };
        let up = |i: usize| if y == 0 { 0u8 } else { prev[i] };
        for i in 0..row_bytes {
            let a = if i >= bpp { cur[i - bpp] } else { 0 };
            let b = up(i);
            let c = if i >= bpp { up(i - bpp) } else { 0 };
            let pred = match ft {
                0 => 0,
                1 => a,
                2 => b,
                3 => ((a as u16 + b as u16) / 2) as u8,
                4 => {
                    let p = a as i16 + b as i16 - c as i16;
                    let (pa, pb, pc) = (
                        (p - a as i16).abs(),
                        (p - b as i16).abs(),
                        (p - c as i16).abs(),
                    );
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                f => return Err(format!("PNG: bad filter type {f}")),
            };
            cur[i] = src[i].wrapping_add(pred);
        }
    }
    Ok(out)
}

struct PngInfo {
    depth: usize,
    ctype: u8,
    palette: Vec<[u8; 3]>,
}

impl PngInfo {
    fn channels(&self) -> usize {
        match self.ctype {
            0 | 3 => 1,
            4 => 2,
            2 => 3,
            _ => 4,
        }
    }
    fn row_bytes(&self, w: usize) -> usize {
        (w * self.channels() * self.depth).div_ceil(8)
    }
    /// Convert one unfiltered row of `w` pixels to RGB, writing pixel `x` to `put(x, rgb)`.
    fn row_to_rgb(
        &self,
        row: &[u8],
        w: usize,
        mut put: impl FnMut(usize, [u8; 3]),
    ) -> Result<(), String> {
        let ch = self.channels();
        let sample = |i: usize| -> u16 {
            match self.depth {
                8 => row[i] as u16,
                16 => row[2 * i] as u16,
                d => {
                    let bit = i * d;
                    let v = (row[bit / 8] >> (8 - d - bit % 8)) & ((1u16 << d) - 1) as u8;
                    v as u16
                }
            }
        };
        let scale = |v: u16| -> u8 {
            if self.depth >= 8 {
                v as u8
            } else {
                (v as u32 * 255 / ((1u32 << self.depth) - 1)) as u8
            }
        };
        for x in 0..w {
            let s = x * ch;
            let px = match self.ctype {
                0 | 4 => {
                    let g = scale(sample(s));
                    [g, g, g]
                }
                3 => {
                    let idx = sample(s) as usize;
                    *self
                        .palette
                        .get(idx)
                        .ok_or_else(|| format!("PNG: palette index {idx} out of range"))?
                }
                _ => [sample(s) as u8, sample(s + 1) as u8, sample(s + 2) as u8],
            };
            put(x, px);
        }
        Ok(())
    }
}

/// Decode a PNG held in memory into RGB (all standard colour types and bit depths,
/// interlaced or not; CRCs are not checked).
pub fn decode_png(bytes: &[u8]) -> Result<Rgb, String> {
    if bytes.len() < 8 || &bytes[..8] != b"\x89PNG\r\n\x1a\n" {
        return Err("not a PNG file".into());
    }
    let mut pos = 8;
    let mut hdr: Option<(usize, usize, bool)> = None;
    let mut info = PngInfo {
        depth: 8,
        ctype: 2,
        palette: Vec::new(),
    };
    let mut idat = Vec::new();
    let mut ended = false;
    while pos + 8 <= bytes.len() {
        let len = be32(bytes, pos) as usize;
        let kind = &bytes[pos + 4..pos + 8];
        let body = pos + 8;
        let end = body
            .checked_add(len)
            .filter(|&e| e + 4 <= bytes.len())
            .ok_or("PNG: truncated chunk")?;
        let data = &bytes[body..end];
        match kind {
            b"IHDR" => {
                if len < 13 {
                    return Err("PNG: short IHDR".into());
                }
                let (w, h) = (be32(data, 0) as usize, be32(data, 4) as usize);
                info.depth = data[8] as usize;
                info.ctype = data[9];
                let ok = match info.ctype {
                    0 => matches!(info.depth, 1 | 2 | 4 | 8 | 16),
                    3 => matches!(info.depth, 1 | 2 | 4 | 8),
                    2 | 4 | 6 => matches!(info.depth, 8 | 16),
                    _ => false,
                };
                if !ok || data[10] != 0 || data[11] != 0 || data[12] > 1 {
                    return Err(format!(
                        "PNG: unsupported colour type {} / bit depth {}",
                        info.ctype, info.depth
                    ));
                }
                if w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE {
                    return Err(format!("PNG: bad size {w}×{h}"));
                }
                hdr = Some((w, h, data[12] == 1));
            }
            b"PLTE" => info.palette = data.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect(),
            b"IDAT" => idat.extend_from_slice(data),
            b"IEND" => {
                ended = true;
                break;
            }
            _ => {}
        }
        pos = end + 4;
    }
    let (w, h, interlaced) = hdr.ok_or("PNG: no IHDR chunk")?;
    if !ended && idat.is_empty() {
        return Err("PNG: no image data (truncated?)".into());
    }
    if info.ctype == 3 && info.palette.is_empty() {
        return Err("PNG: palette image without PLTE".into());
    }
    let bpp = ((info.channels() * info.depth) / 8).max(1);
    // (x0, y0, dx, dy) of each pass.
    let passes: Vec<(usize, usize, usize, usize)> = if interlaced {
        vec![
            (0, 0, 8, 8),
            (4, 0, 8, 8),
            (0, 4, 4, 8),
            (2, 0, 4, 4),
            (0, 2, 2, 4),
            (1, 0, 2, 2),
            (0, 1, 1, 2),
        ]
    } else {
        vec![(0, 0, 1, 1)]
    };
    let dims: Vec<(usize, usize)> = passes
        .iter()
        .map(|&(x0, y0, dx, dy)| {
            (
                w.saturating_sub(x0).div_ceil(dx),
                h.saturating_sub(y0).div_ceil(dy),
            )
        })
        .collect();
    let expected: usize = dims
        .iter()
        .filter(|(pw, ph)| *pw > 0 && *ph > 0)
        .map(|&(pw, ph)| ph * (1 + info.row_bytes(pw)))
        .sum();
    // Deflate cannot expand by more than ~1032:1; a larger claim means a lying header.
    if expected > idat.len().saturating_mul(1100) + 1024 {
        return Err(format!(
            "PNG: {w}×{h} image cannot fit in {} compressed bytes (truncated?)",
            idat.len()
        ));
    }
    let mut raw = Vec::with_capacity(expected);
    flate2::read::ZlibDecoder::new(&idat[..])
        .take(expected as u64)
        .read_to_end(&mut raw)
        .map_err(|e| format!("PNG: bad compressed data: {e}"))?;
    if raw.len() < expected {
        return Err(format!(
            "PNG: image data is {} bytes, expected {expected} (truncated?)",
            raw.len()
        ));
    }
    let mut rgb = vec![0u8; w * h * 3];
    let mut off = 0;
    for (&(x0, y0, dx, dy), &(pw, ph)) in passes.iter().zip(&dims) {
        if pw == 0 || ph == 0 {
            continue;
        }
        let rb = info.row_bytes(pw);
        let len = ph * (rb + 1);
        let pass = unfilter(&raw[off..off + len], ph, rb, bpp)?;
        off += len;
        for (py, row) in pass.chunks_exact(rb).enumerate() {
            let y = y0 + py * dy;
            info.row_to_rgb(row, pw, |px, c| {
                let x = x0 + px * dx;
                rgb[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&c);
            })?;
        }
    }
    Ok(Rgb {
        width: w,
        height: h,
        data: rgb,
    })
}

/// Decode a JPEG or PNG file (format chosen by its content).
pub fn decode_image_file(path: &Path) -> Result<Rgb, DataError> {
    let bytes = super::files::read_file(path)?;
    let res = if bytes.starts_with(b"\x89PNG") {
        decode_png(&bytes)
    } else {
        decode_jpeg(&bytes)
    };
    res.map_err(|m| DataError::malformed(path, m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_bytes(w: u32, h: u32, depth: u8, ctype: u8, raw: &[u8], plte: Option<&[u8]>) -> Vec<u8> {
        use std::io::Write;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(raw).unwrap();
        let idat = z.finish().unwrap();
        let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut chunk = |kind: &[u8], data: &[u8]| {
            v.extend_from_slice(&(data.len() as u32).to_be_bytes());
            v.extend_from_slice(kind);
            v.extend_from_slice(data);
            v.extend_from_slice(&[0; 4]);
        };
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&w.to_be_bytes());
        ihdr.extend_from_slice(&h.to_be_bytes());
        ihdr.extend_from_slice(&[depth, ctype, 0, 0, 0]);
        chunk(b"IHDR", &ihdr);
        if let Some(p) = plte {
            chunk(b"PLTE", p);
        }
        chunk(b"IDAT", &idat);
        chunk(b"IEND", &[]);
        v
    }

    #[test]
    fn png_low_bit_depths_and_filters() {
        // 2-bit palette 3x2, rows filtered with Sub and Up.
        let plte = [0, 0, 0, 10, 20, 30, 40, 50, 60, 250, 251, 252];
        // row0: indices 1,2,3 -> 01 10 11 00 = 0x6c ; filter 1 (Sub) on 1 byte: same
        // row1: indices 3,0,1 -> 11 00 01 00 = 0xc4 ; filter 2 (Up): 0xc4 - 0x6c
        let raw = [1, 0x6c, 2, 0xc4u8.wrapping_sub(0x6c)];
        let img = decode_png(&png_bytes(3, 2, 2, 3, &raw, Some(&plte))).unwrap();
        assert_eq!(
            img.data,
            vec![10, 20, 30, 40, 50, 60, 250, 251, 252, 250, 251, 252, 0, 0, 0, 10, 20, 30]
        );
        // 4-bit grey 2x1: 0x0f -> 0, 255
        let img = decode_png(&png_bytes(2, 1, 4, 0, &[0, 0x0f], None)).unwrap();
        assert_eq!(img.data, vec![0, 0, 0, 255, 255, 255]);
        // 16-bit RGB 1x1 keeps the high byte; Paeth on the first pixel of a first row = raw.
        let img = decode_png(&png_bytes(1, 1, 16, 2, &[4, 1, 2, 3, 4, 5, 6], None)).unwrap();
        assert_eq!(img.data, vec![1, 3, 5]);
    }

    #[test]
    fn png_mutations_no_panic() {
        use rand::{Rng, SeedableRng};
        let raw: Vec<u8> = (0..4)
            .flat_map(|r| {
                std::iter::once((r % 5) as u8).chain((0..12).map(move |i| (i * 17 + r) as u8))
            })
            .collect();
        let good = png_bytes(4, 4, 8, 2, &raw, None);
        assert!(decode_png(&good).is_ok());
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for _ in 0..3000 {
            let mut b = good.clone();
            for _ in 0..rng.gen_range(1..4) {
                let i = rng.gen_range(0..b.len());
                b[i] = rng.gen();
            }
            if rng.gen_bool(0.2) {
                b.truncate(rng.gen_range(0..b.len()));
            }
            let _ = decode_png(&b);
            let _ = decode_jpeg(&b);
        }
    }

    #[test]
    fn png_garbage_no_panic() {
        let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
        b.extend_from_slice(&13u32.to_be_bytes());
        b.extend_from_slice(b"IHDR");
        b.extend_from_slice(&4u32.to_be_bytes());
        b.extend_from_slice(&4u32.to_be_bytes());
        b.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
        for cut in 0..b.len() {
            assert!(decode_png(&b[..cut]).is_err());
        }
        assert!(decode_png(&b).is_err());
        assert!(decode_jpeg(&[0xff, 0xd8, 0xff]).is_err());
    }
}
