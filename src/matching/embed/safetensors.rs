//! The part of a safetensors file parlor needs: its F32 tensors, streamed from a reader (the
//! model's zip member) into one buffer each, and a CRC-32 of the first MiB passed through
//! (the weights' id for caches).

use super::EmbedError;
use ndarray::{Array1, Array2};
use std::collections::HashMap;
use std::io::Read;

/// A reader that keeps the CRC-32 of the first MiB it passes on (the weights' id for caches).
pub(super) struct Sampled<R> {
    inner: R,
    pub(super) crc: crc32fast::Hasher,
    seen: usize,
}

impl<R: Read> Sampled<R> {
    pub(super) fn new(inner: R) -> Self {
        Self {
            inner,
            crc: crc32fast::Hasher::new(),
            seen: 0,
        }
    }
}

impl<R: Read> Read for Sampled<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let take = n.min((1 << 20) - self.seen.min(1 << 20));
        self.crc.update(&buf[..take]);
        self.seen += take;
        Ok(n)
    }
}

/// Headers larger than this are refused (the models parlor runs have ~20 KB).
const MAX_HEADER: usize = 16 << 20;

/// The F32 tensors of a safetensors file (a JSON header of names, dtypes, shapes and byte
/// ranges, then the data), each read from the stream into its own buffer.
pub(super) struct SafeTensors {
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
}

impl SafeTensors {
    /// Read a whole safetensors stream of `size` bytes. Tensors of other types are skipped.
    pub(super) fn read(r: &mut impl Read, size: u64) -> Result<Self, EmbedError> {
        let bad = |m: &str| EmbedError::Weights(format!("not a safetensors file: {m}"));
        let cut =
            |e: std::io::Error| EmbedError::Weights(format!("the weights are cut short: {e}"));
        let mut len = [0u8; 8];
        r.read_exact(&mut len).map_err(|_| bad("too short"))?;
        let len = u64::from_le_bytes(len);
        let data_size = size
            .checked_sub(8)
            .and_then(|s| s.checked_sub(len))
            .filter(|_| len as usize <= MAX_HEADER)
            .ok_or_else(|| bad("header past the end"))?;
        let mut header = vec![0u8; len as usize];
        r.read_exact(&mut header).map_err(cut)?;
        let header: HashMap<String, serde_json::Value> =
            serde_json::from_slice(&header).map_err(|e| bad(&e.to_string()))?;
        let mut wanted: Vec<(u64, u64, String, Vec<usize>)> = Vec::new();
        for (name, t) in &header {
            if t["dtype"].as_str() != Some("F32") {
                continue;
            }
            let shape = usizes(&t["shape"]);
            let (a, b) = match usizes(&t["data_offsets"])[..] {
                [a, b] if a <= b && b as u64 <= data_size => (a as u64, b as u64),
                _ => return Err(EmbedError::Weights(format!("{name}: bad data range"))),
            };
            let elements = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
            if elements.and_then(|n| n.checked_mul(4)) != Some((b - a) as usize) {
                return Err(EmbedError::Weights(format!(
                    "{name}: {} bytes for shape {shape:?}",
                    b - a
                )));
            }
            wanted.push((a, b, name.clone(), shape));
        }
        wanted.sort();
        let mut at = 0u64;
        let mut tensors = HashMap::with_capacity(wanted.len());
        for (a, b, name, shape) in wanted {
            if a < at {
                return Err(EmbedError::Weights(format!(
                    "{name}: overlaps the tensor before it"
                )));
            }
            std::io::copy(&mut r.by_ref().take(a - at), &mut std::io::sink()).map_err(cut)?;
            let mut values = vec![0.0f32; ((b - a) / 4) as usize];
            // safetensors is little-endian, like every target parlor builds for.
            r.read_exact(bytemuck::cast_slice_mut(&mut values))
                .map_err(cut)?;
            at = b;
            tensors.insert(name, (shape, values));
        }
        // Read to the end, so a zip member's CRC-32 is checked (the zip reader does at its end).
        std::io::copy(r, &mut std::io::sink()).map_err(cut)?;
        Ok(Self { tensors })
    }

    pub(super) fn has(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    fn tensor(&mut self, name: &str) -> Result<(Vec<usize>, Vec<f32>), EmbedError> {
        self.tensors
            .remove(name)
            .ok_or_else(|| EmbedError::Weights(format!("no F32 tensor {name}")))
    }

    pub(super) fn matrix(&mut self, name: &str) -> Result<Array2<f32>, EmbedError> {
        let (shape, v) = self.tensor(name)?;
        let [r, c] = shape[..] else {
            return Err(EmbedError::Weights(format!(
                "{name}: shape {shape:?} is not 2-D"
            )));
        };
        Array2::from_shape_vec((r, c), v).map_err(|e| EmbedError::Weights(e.to_string()))
    }

    pub(super) fn vector(&mut self, name: &str) -> Result<Array1<f32>, EmbedError> {
        let (shape, v) = self.tensor(name)?;
        if shape.len() != 1 {
            return Err(EmbedError::Weights(format!(
                "{name}: shape {shape:?} is not 1-D"
            )));
        }
        Ok(Array1::from_vec(v))
    }
}

/// A safetensors header array of non-negative integers (empty when absent or malformed).
fn usizes(v: &serde_json::Value) -> Vec<usize> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(serde_json::Value::as_u64)
                .map(|v| v as usize)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_damaged_zip_member_fails_its_crc_check() {
        let mut file = Vec::new();
        let header = r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
        file.extend_from_slice(&(header.len() as u64).to_le_bytes());
        file.extend_from_slice(header.as_bytes());
        file.extend_from_slice(&[1.5f32, -2.0].map(f32::to_le_bytes).concat());
        file.extend_from_slice(b"trailing bytes no tensor names");
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let stored = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        zip.start_file("model.safetensors", stored).unwrap();
        zip.write_all(&file).unwrap();
        let bytes = zip.finish().unwrap().into_inner();
        let read = |bytes: Vec<u8>| {
            let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
            let entry = archive.by_name("model.safetensors").unwrap();
            let size = entry.size();
            SafeTensors::read(&mut Sampled::new(entry), size).map(|mut t| t.vector("w").unwrap())
        };
        assert_eq!(read(bytes.clone()).unwrap().to_vec(), vec![1.5, -2.0]);
        // One byte of the trailing part flipped: no tensor reads it, the CRC-32 still does.
        let at = bytes.windows(8).position(|w| w == b"trailing").unwrap();
        let mut damaged = bytes;
        damaged[at] ^= 0x20;
        assert!(read(damaged).is_err());
    }

    #[test]
    fn damaged_files_are_errors_not_panics() {
        let read = |b: &[u8]| SafeTensors::read(&mut &b[..], b.len() as u64).map(|_| ());
        assert!(read(b"\xff\xff\xff\xff\xff\xff\xff\xff").is_err());
        assert!(read(b"").is_err());
        // A header that claims more data than the file has, and a file cut inside a tensor.
        let file = |header: &str, data: &[u8]| {
            let mut f = (header.len() as u64).to_le_bytes().to_vec();
            f.extend_from_slice(header.as_bytes());
            f.extend_from_slice(data);
            f
        };
        let h = r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
        assert!(read(&file(h, &[0; 4])).is_err());
        let ok = file(h, &[0; 8]);
        assert!(read(&ok).is_ok());
        assert!(SafeTensors::read(&mut &ok[..ok.len() - 2], ok.len() as u64).is_err());
        let wrong_shape = r#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#;
        assert!(read(&file(wrong_shape, &[0; 8])).is_err());
    }
}
