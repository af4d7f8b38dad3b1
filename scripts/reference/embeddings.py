#!/usr/bin/env python3
"""Reference forward pass of the sentence-embedding models parlor runs (src/matching/embed.rs),
transcribed in NumPy from Hugging Face's modeling_bert.py / modeling_mpnet.py, with Hugging
Face's own tokenizer. Not used by parlor or its tests; it is where the expected cosines of
tests/integration/grounded.rs come from:

    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install numpy safetensors tokenizers
    unzip -q storage/models/all-MiniLM-L6-v2.zip -d /tmp/minilm
    unzip -q storage/models/all-mpnet-base-v2.zip -d /tmp/mpnet
    /tmp/ref/bin/python scripts/reference/embeddings.py /tmp/minilm /tmp/mpnet/all-mpnet-base-v2

For MiniLM it prints sentence-transformers' published quickstart values (0.6660, 0.1046,
0.1411), which checks the shared part of the transcription.
"""
import json
import math
import sys

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

SENTENCES = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]


def layer_norm(x, w, b, eps):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * w + b


def gelu(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def relative_bucket(rel, buckets=32, max_distance=128):
    """MPNetEncoder.relative_position_bucket."""
    n = -rel
    buckets //= 2
    ret = (n < 0).astype(np.int64) * buckets
    n = np.abs(n)
    exact = buckets // 2
    large = exact + (np.log(np.maximum(n, 1) / exact) / math.log(max_distance / exact)
                     * (buckets - exact)).astype(np.int64)
    return ret + np.where(n < exact, n, np.minimum(large, buckets - 1))


class Encoder:
    def __init__(self, folder):
        self.t = load_file(folder + "/model.safetensors")
        self.mpnet = "encoder.relative_attention_bias.weight" in self.t
        config = json.load(open(folder + "/config.json"))
        self.layers = config["num_hidden_layers"]
        self.heads = config["num_attention_heads"]
        self.eps = config["layer_norm_eps"]
        self.tok = Tokenizer.from_file(folder + "/tokenizer.json")
        self.tok.no_padding()
        self.tok.no_truncation()

    def linear(self, x, name):
        return x @ self.t[name + ".weight"].T + self.t[name + ".bias"]

    def embed(self, text):
        t = self.t
        ids = self.tok.encode(text).ids[:128]
        n = len(ids)
        h = t["embeddings.word_embeddings.weight"][ids]
        if self.mpnet:
            h = h + t["embeddings.position_embeddings.weight"][np.arange(n) + 2]
            rel = np.arange(n)[None, :] - np.arange(n)[:, None]
            bias = t["encoder.relative_attention_bias.weight"][relative_bucket(rel)].transpose(2, 0, 1)
        else:
            h = h + t["embeddings.position_embeddings.weight"][:n]
            h = h + t["embeddings.token_type_embeddings.weight"][0]
            bias = 0
        h = layer_norm(h, t["embeddings.LayerNorm.weight"], t["embeddings.LayerNorm.bias"], self.eps)
        width = h.shape[1]
        hd = width // self.heads
        for i in range(self.layers):
            p = f"encoder.layer.{i}"
            if self.mpnet:
                names = [f"{p}.attention.attn.{x}" for x in "qkvo"] + [f"{p}.attention.LayerNorm"]
            else:
                names = [f"{p}.attention.self.{x}" for x in ("query", "key", "value")]
                names += [f"{p}.attention.output.dense", f"{p}.attention.output.LayerNorm"]
            q, k, v = (self.linear(h, names[j]).reshape(n, self.heads, hd).transpose(1, 0, 2)
                       for j in range(3))
            s = q @ k.transpose(0, 2, 1) / math.sqrt(hd) + bias
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            c = (s @ v).transpose(1, 0, 2).reshape(n, width)
            a = layer_norm(self.linear(c, names[3]) + h, t[names[4] + ".weight"],
                           t[names[4] + ".bias"], self.eps)
            u = gelu(self.linear(a, f"{p}.intermediate.dense"))
            h = layer_norm(self.linear(u, f"{p}.output.dense") + a,
                           t[f"{p}.output.LayerNorm.weight"], t[f"{p}.output.LayerNorm.bias"],
                           self.eps)
        e = h.mean(0)
        return e / np.linalg.norm(e)


if __name__ == "__main__":
    for folder in sys.argv[1:]:
        a, b, c = (Encoder(folder).embed(s) for s in SENTENCES)
        print(f"{folder}: {a @ b:.4f} {a @ c:.4f} {b @ c:.4f}")
