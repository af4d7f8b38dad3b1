//! PNG character cards: the card JSON is base64 in a `tEXt` (or uncompressed `iTXt`) chunk
//! named `ccv3` (V3, preferred) or `chara` (V2). Chunks are read by hand; CRCs are checked.

use super::ImportError;
use base64::Engine as _;

/// The eight bytes every PNG file starts with.
pub const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// One chunk of a PNG file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Four-letter type (`IHDR`, `tEXt`, ...).
    pub kind: [u8; 4],
    /// The data.
    pub data: Vec<u8>,
}

/// Split a PNG file into its chunks, checking lengths and CRCs.
pub fn chunks(bytes: &[u8]) -> Result<Vec<Chunk>, ImportError> {
    let bad = |m: String| ImportError::BadPng(m);
    let mut rest = bytes
        .strip_prefix(SIGNATURE)
        .ok_or_else(|| bad("not a PNG file (wrong signature)".into()))?;
    let mut out = Vec::new();
    let mut offset = SIGNATURE.len();
    while !rest.is_empty() {
        if rest.len() < 12 {
            return Err(bad(format!("truncated chunk at byte {offset}")));
        }
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let kind = [rest[4], rest[5], rest[6], rest[7]];
        if rest.len() < 12 + len {
            return Err(bad(format!(
                "chunk \"{}\" at byte {offset} claims {len} bytes but the file ends first",
                String::from_utf8_lossy(&kind)
            )));
        }
        let data = &rest[8..8 + len];
        let crc =
            u32::from_be_bytes([rest[8 + len], rest[9 + len], rest[10 + len], rest[11 + len]]);
        if crc != chunk_crc(&kind, data) {
            return Err(bad(format!(
                "chunk \"{}\" at byte {offset} has a wrong checksum; the file is damaged",
                String::from_utf8_lossy(&kind)
            )));
        }
        out.push(Chunk {
            kind,
            data: data.to_vec(),
        });
        offset += 12 + len;
        rest = &rest[12 + len..];
        if &kind == b"IEND" {
            break;
        }
    }
    Ok(out)
}

/// CRC-32 of a chunk's type and data (as stored after the data).
pub fn chunk_crc(kind: &[u8; 4], data: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(kind);
    h.update(data);
    h.finalize()
}

/// The text chunks (`tEXt`, uncompressed `iTXt`) as (keyword, text).
pub fn text_chunks(chunks: &[Chunk]) -> Result<Vec<(String, String)>, ImportError> {
    let mut out = Vec::new();
    for c in chunks {
        match &c.kind {
            b"tEXt" => {
                let Some(nul) = c.data.iter().position(|&b| b == 0) else {
                    continue;
                };
                // tEXt is Latin-1.
                let latin1 = |b: &[u8]| b.iter().map(|&c| c as char).collect::<String>();
                out.push((latin1(&c.data[..nul]), latin1(&c.data[nul + 1..])));
            }
            b"iTXt" => {
                let Some(nul) = c.data.iter().position(|&b| b == 0) else {
                    continue;
                };
                let keyword = String::from_utf8_lossy(&c.data[..nul]).into_owned();
                let rest = &c.data[nul + 1..];
                if rest.len() < 2 {
                    continue;
                }
                if rest[0] != 0 {
                    if matches!(keyword.as_str(), "chara" | "ccv3") {
                        return Err(ImportError::BadPng(format!(
                            "the \"{keyword}\" chunk is compressed, which is not supported; re-save the card with an uncompressed chunk or export it as JSON"
                        )));
                    }
                    continue;
                }
                // Skip language tag and translated keyword (both NUL-terminated).
                let mut body = &rest[2..];
                for _ in 0..2 {
                    match body.iter().position(|&b| b == 0) {
                        Some(i) => body = &body[i + 1..],
                        None => body = &[],
                    }
                }
                out.push((keyword, String::from_utf8_lossy(body).into_owned()));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The card JSON inside a PNG card (`ccv3` preferred over `chara`).
pub fn card_json(bytes: &[u8]) -> Result<String, ImportError> {
    let texts = text_chunks(&chunks(bytes)?)?;
    let find = |k: &str| texts.iter().find(|(key, _)| key == k).map(|(_, t)| t);
    let Some(b64) = find("ccv3").or_else(|| find("chara")) else {
        return Err(ImportError::BadPng(
            "no \"chara\" or \"ccv3\" text chunk: this image holds no character card".into(),
        ));
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| ImportError::BadPng(format!("the card chunk is not valid base64: {e}")))?;
    String::from_utf8(raw)
        .map_err(|_| ImportError::BadPng("the card chunk does not hold UTF-8 JSON".into()))
}

/// A minimal valid PNG (1x1 grey pixel) with `chara` (and optionally `ccv3`) chunks holding
/// `json` in base64: what card editors write. Used by tests and fixtures.
pub fn card_png(chara: Option<&str>, ccv3: Option<&str>) -> Vec<u8> {
    let mut out = SIGNATURE.to_vec();
    let mut push = |kind: &[u8; 4], data: &[u8]| {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&chunk_crc(kind, data).to_be_bytes());
    };
    // 1x1, bit depth 8, greyscale.
    push(b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0]);
    for (key, json) in [("chara", chara), ("ccv3", ccv3)] {
        if let Some(json) = json {
            let mut data = key.as_bytes().to_vec();
            data.push(0);
            data.extend_from_slice(
                base64::engine::general_purpose::STANDARD
                    .encode(json)
                    .as_bytes(),
            );
            push(b"tEXt", &data);
        }
    }
    // zlib stream of one scanline: filter byte 0, pixel 0x80 (stored block, no compression).
    let raw = [0u8, 0x80];
    let mut idat = vec![0x78, 0x01, 0x01, 0x02, 0x00, 0xfd, 0xff];
    idat.extend_from_slice(&raw);
    idat.extend_from_slice(&adler32(&raw).to_be_bytes());
    push(b"IDAT", &idat);
    push(b"IEND", &[]);
    out
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &d in data {
        a = (a + u32::from(d)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}
