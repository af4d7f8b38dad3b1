//! A GGUF reader and writer just large enough to re-encode a model's tensors: the header, the
//! key/value metadata (kept as raw bytes, except the few keys we read or change), the tensor
//! infos and the aligned data section. Format: <https://github.com/ggml-org/ggml/blob/master/docs/gguf.md>.

use std::io::{self, Read, Write};

/// The GGUF magic number at the start of every file.
pub const MAGIC: &[u8; 4] = b"GGUF";
/// Data alignment when `general.alignment` is not set.
const DEFAULT_ALIGNMENT: u64 = 32;
/// Largest string or array we accept (a corrupt length must not allocate gigabytes).
const MAX_LEN: u64 = 1 << 28;

/// ggml tensor types this module knows the block layout of.
pub mod ty {
    /// 32-bit floats.
    pub const F32: u32 = 0;
    /// 16-bit floats.
    pub const F16: u32 = 1;
    /// 4-bit with a scale and a minimum per 32 weights.
    pub const Q4_1: u32 = 3;
    /// 8-bit with a scale per 32 weights.
    pub const Q8_0: u32 = 8;
}

/// (weights per block, bytes per block) of a ggml type, for the types GGUF files carry.
fn block_layout(ggml_type: u32) -> Option<(u64, u64)> {
    Some(match ggml_type {
        0 => (1, 4),      // F32
        1 => (1, 2),      // F16
        2 => (32, 18),    // Q4_0
        3 => (32, 20),    // Q4_1
        6 => (32, 22),    // Q5_0
        7 => (32, 24),    // Q5_1
        8 => (32, 34),    // Q8_0
        9 => (32, 36),    // Q8_1
        10 => (256, 84),  // Q2_K
        11 => (256, 110), // Q3_K
        12 => (256, 144), // Q4_K
        13 => (256, 176), // Q5_K
        14 => (256, 210), // Q6_K
        15 => (256, 292), // Q8_K
        16 => (256, 66),  // IQ2_XXS
        17 => (256, 74),  // IQ2_XS
        18 => (256, 98),  // IQ3_XXS
        19 => (256, 50),  // IQ1_S
        20 => (32, 18),   // IQ4_NL
        21 => (256, 110), // IQ3_S
        22 => (256, 82),  // IQ2_S
        23 => (256, 136), // IQ4_XS
        24 => (1, 1),     // I8
        25 => (1, 2),     // I16
        26 => (1, 4),     // I32
        27 => (1, 8),     // I64
        28 => (1, 8),     // F64
        29 => (256, 56),  // IQ1_M
        30 => (1, 2),     // BF16
        34 => (256, 54),  // TQ1_0
        35 => (256, 66),  // TQ2_0
        39 => (32, 17),   // MXFP4
        _ => return None,
    })
}

/// Key of the file's main weight type (llama.cpp's `llama_ftype`).
pub const KEY_FILE_TYPE: &str = "general.file_type";
/// `llama_ftype` of a file whose weights are mostly Q4_1.
pub const FTYPE_MOSTLY_Q4_1: u32 = 3;
/// `llama_ftype` of a file whose weights are mostly Q8_0.
pub const FTYPE_MOSTLY_Q8_0: u32 = 7;

/// Metadata value type codes.
const T_U32: u32 = 4;
const T_STRING: u32 = 8;
const T_ARRAY: u32 = 9;

/// One metadata entry; the value is kept encoded (without its type code).
#[derive(Debug, Clone, PartialEq)]
pub struct Kv {
    /// The key, e.g. `general.architecture`.
    pub key: String,
    /// GGUF value type code.
    pub value_type: u32,
    /// The encoded value.
    pub raw: Vec<u8>,
}

impl Kv {
    /// The value as a u32, if it is one.
    pub fn as_u32(&self) -> Option<u32> {
        (self.value_type == T_U32 && self.raw.len() == 4)
            .then(|| u32::from_le_bytes(self.raw[..4].try_into().expect("4 bytes")))
    }
}

/// One tensor's description.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// Tensor name.
    pub name: String,
    /// Dimensions, innermost first.
    pub dims: Vec<u64>,
    /// ggml type code.
    pub ggml_type: u32,
    /// Offset of its data from the start of the data section.
    pub offset: u64,
}

impl TensorInfo {
    /// Number of weights.
    pub fn elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// Size of its data in bytes; `None` for an unknown type or a shape its blocks do not fit.
    pub fn byte_size(&self) -> Option<u64> {
        let (block, bytes) = block_layout(self.ggml_type)?;
        let row = *self.dims.first().unwrap_or(&1);
        row.is_multiple_of(block)
            .then(|| self.elements() / block * bytes)
    }
}

/// A parsed GGUF header: everything before the data section.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// GGUF version (2 or 3).
    pub version: u32,
    /// Metadata in file order.
    pub kvs: Vec<Kv>,
    /// Tensor infos in file order.
    pub tensors: Vec<TensorInfo>,
    /// Where the data section starts in the file.
    pub data_start: u64,
}

/// Why a file could not be read as GGUF.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The bytes are not a GGUF file this reader understands.
    #[error("not a valid GGUF file: {0}")]
    Format(String),
}

fn bad(msg: impl Into<String>) -> GgufError {
    GgufError::Format(msg.into())
}

/// Counts how many bytes were read, so the data section's start is known.
struct Counted<R> {
    inner: R,
    at: u64,
}

impl<R: Read> Counted<R> {
    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], GgufError> {
        let mut b = [0u8; N];
        self.inner.read_exact(&mut b)?;
        self.at += N as u64;
        Ok(b)
    }
    fn u32(&mut self) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.bytes()?))
    }
    fn u64(&mut self) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.bytes()?))
    }
    fn vec(&mut self, len: u64) -> Result<Vec<u8>, GgufError> {
        if len > MAX_LEN {
            return Err(bad(format!("a length of {len} bytes is implausible")));
        }
        let mut v = vec![0u8; len as usize];
        self.inner.read_exact(&mut v)?;
        self.at += len;
        Ok(v)
    }
    fn string(&mut self) -> Result<String, GgufError> {
        let len = self.u64()?;
        String::from_utf8(self.vec(len)?).map_err(|_| bad("a key or name is not UTF-8"))
    }
    /// Read one value of type `t`, appending its encoding to `out`.
    fn value(&mut self, t: u32, out: &mut Vec<u8>, depth: u32) -> Result<(), GgufError> {
        let fixed = match t {
            0 | 1 | 7 => 1,
            2 | 3 => 2,
            4..=6 => 4,
            10..=12 => 8,
            T_STRING => {
                let len = self.u64()?;
                out.extend_from_slice(&len.to_le_bytes());
                out.extend(self.vec(len)?);
                return Ok(());
            }
            T_ARRAY if depth < 4 => {
                let (elem, n) = (self.u32()?, self.u64()?);
                if n > MAX_LEN {
                    return Err(bad(format!("an array of {n} values is implausible")));
                }
                out.extend_from_slice(&elem.to_le_bytes());
                out.extend_from_slice(&n.to_le_bytes());
                for _ in 0..n {
                    self.value(elem, out, depth + 1)?;
                }
                return Ok(());
            }
            other => return Err(bad(format!("unknown metadata value type {other}"))),
        };
        out.extend(self.vec(fixed)?);
        Ok(())
    }
}

impl Header {
    /// Parse the header from the start of a GGUF file.
    pub fn read(r: impl Read) -> Result<Self, GgufError> {
        let mut r = Counted { inner: r, at: 0 };
        if &r.bytes::<4>()? != MAGIC {
            return Err(bad("it does not start with \"GGUF\""));
        }
        let version = r.u32()?;
        if !(2..=3).contains(&version) {
            return Err(bad(format!("unsupported GGUF version {version}")));
        }
        let (n_tensors, n_kv) = (r.u64()?, r.u64()?);
        if n_tensors > MAX_LEN || n_kv > MAX_LEN {
            return Err(bad("implausible tensor or metadata count"));
        }
        let mut kvs = Vec::with_capacity(n_kv as usize);
        for _ in 0..n_kv {
            let key = r.string()?;
            let value_type = r.u32()?;
            let mut raw = Vec::new();
            r.value(value_type, &mut raw, 0)?;
            kvs.push(Kv {
                key,
                value_type,
                raw,
            });
        }
        let mut tensors = Vec::with_capacity(n_tensors as usize);
        for _ in 0..n_tensors {
            let name = r.string()?;
            let n_dims = r.u32()?;
            if n_dims > 8 {
                return Err(bad(format!("tensor \"{name}\" has {n_dims} dimensions")));
            }
            let dims = (0..n_dims).map(|_| r.u64()).collect::<Result<_, _>>()?;
            let ggml_type = r.u32()?;
            let offset = r.u64()?;
            tensors.push(TensorInfo {
                name,
                dims,
                ggml_type,
                offset,
            });
        }
        let mut header = Self {
            version,
            kvs,
            tensors,
            data_start: 0,
        };
        header.data_start = r.at.next_multiple_of(header.alignment());
        Ok(header)
    }

    /// The data alignment (`general.alignment`, default 32).
    pub fn alignment(&self) -> u64 {
        self.kv("general.alignment")
            .and_then(Kv::as_u32)
            .filter(|a| a.is_power_of_two())
            .map_or(DEFAULT_ALIGNMENT, u64::from)
    }

    /// The metadata entry `key`.
    pub fn kv(&self, key: &str) -> Option<&Kv> {
        self.kvs.iter().find(|kv| kv.key == key)
    }

    /// Set a u32 entry that exists (returns false when it does not, or is not a u32).
    pub fn set_u32(&mut self, key: &str, value: u32) -> bool {
        match self.kvs.iter_mut().find(|kv| kv.key == key) {
            Some(kv) if kv.value_type == T_U32 => {
                kv.raw = value.to_le_bytes().to_vec();
                true
            }
            _ => false,
        }
    }

    /// Give every tensor the offset it gets when their data follow each other, each aligned.
    pub fn lay_out(&mut self) -> Result<(), GgufError> {
        let align = self.alignment();
        let mut at = 0u64;
        for t in &mut self.tensors {
            let size = t.byte_size().ok_or_else(|| {
                bad(format!(
                    "tensor \"{}\" has type {} or shape {:?} this reader does not know",
                    t.name, t.ggml_type, t.dims
                ))
            })?;
            t.offset = at;
            at = (at + size).next_multiple_of(align);
        }
        Ok(())
    }

    /// Write the header and the padding up to the data section; returns the bytes written.
    pub fn write(&self, w: &mut impl Write) -> Result<u64, GgufError> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.kvs.len() as u64).to_le_bytes());
        let string = |out: &mut Vec<u8>, s: &str| {
            out.extend_from_slice(&(s.len() as u64).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        };
        for kv in &self.kvs {
            string(&mut out, &kv.key);
            out.extend_from_slice(&kv.value_type.to_le_bytes());
            out.extend_from_slice(&kv.raw);
        }
        for t in &self.tensors {
            string(&mut out, &t.name);
            out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&t.ggml_type.to_le_bytes());
            out.extend_from_slice(&t.offset.to_le_bytes());
        }
        let len = (out.len() as u64).next_multiple_of(self.alignment());
        out.resize(len as usize, 0);
        w.write_all(&out)?;
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        let mut h = Header {
            version: 3,
            kvs: vec![
                Kv {
                    key: "general.architecture".into(),
                    value_type: T_STRING,
                    raw: [&5u64.to_le_bytes()[..], b"llama"].concat(),
                },
                Kv {
                    key: KEY_FILE_TYPE.into(),
                    value_type: T_U32,
                    raw: FTYPE_MOSTLY_Q4_1.to_le_bytes().to_vec(),
                },
                Kv {
                    key: "tokenizer.ggml.tokens".into(),
                    value_type: T_ARRAY,
                    raw: [
                        &T_STRING.to_le_bytes()[..],
                        &2u64.to_le_bytes(),
                        &1u64.to_le_bytes(),
                        b"a",
                        &2u64.to_le_bytes(),
                        b"bc",
                    ]
                    .concat(),
                },
            ],
            tensors: vec![
                TensorInfo {
                    name: "a".into(),
                    dims: vec![64, 3],
                    ggml_type: ty::Q4_1,
                    offset: 0,
                },
                TensorInfo {
                    name: "norm".into(),
                    dims: vec![5],
                    ggml_type: ty::F32,
                    offset: 0,
                },
            ],
            data_start: 0,
        };
        h.lay_out().unwrap();
        h
    }

    #[test]
    fn a_written_header_reads_back_the_same() {
        let h = sample();
        // 6 blocks of 20 bytes, aligned to 32.
        assert_eq!(h.tensors[1].offset, 128);
        let mut bytes = Vec::new();
        let len = h.write(&mut bytes).unwrap();
        assert_eq!(len % 32, 0);
        let back = Header::read(&bytes[..]).unwrap();
        assert_eq!(back.data_start, len);
        assert_eq!(back.kvs, h.kvs);
        assert_eq!(back.tensors, h.tensors);
        assert_eq!(back.kv(KEY_FILE_TYPE).unwrap().as_u32(), Some(3));
    }

    #[test]
    fn file_type_is_changed_in_place() {
        let mut h = sample();
        assert!(h.set_u32(KEY_FILE_TYPE, FTYPE_MOSTLY_Q8_0));
        assert!(!h.set_u32("general.architecture", 1));
        assert_eq!(h.kv(KEY_FILE_TYPE).unwrap().as_u32(), Some(7));
    }

    #[test]
    fn garbage_and_truncation_are_format_errors() {
        assert!(matches!(
            Header::read(&b"GGML\x03\0\0\0"[..]),
            Err(GgufError::Format(_))
        ));
        let mut bytes = Vec::new();
        sample().write(&mut bytes).unwrap();
        assert!(Header::read(&bytes[..40]).is_err());
    }
}
