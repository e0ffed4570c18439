#!/usr/bin/env python3
"""Writes the independent reference fixtures of the inference tests.

Run from anywhere with Debian's python3-numpy and python3-torch:

    /usr/bin/python3 inference/testdata/make_fixtures.py [DATA_DIR]

DATA_DIR is the shared data folder (default: $SHRINK_DATA, else
../../../shared/data relative to this script).

stories260K.json: a float64 NumPy implementation of the llama2.c forward pass,
written from the model definition (no KV cache: each call recomputes the whole
causal sequence), run on stories260K.bin read with NumPy. It stores the logits
of a few positions of a fixed token sequence and the 256-step greedy
continuation of BOS with its text (decoded with tok512.bin as run.c does).

mlp_relu.safetensors, mlp_gelu.safetensors: small torch nn.Sequential
classifiers, written by hand in the safetensors format (8-byte little-endian
header length, JSON header, raw data), holding the float32 parameters under
nn.Sequential names plus "input" (float32 [n, in]) and "probs" (float64
[n, classes]): softmax of the model evaluated in float64 on those inputs.
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def data_dir():
    if len(sys.argv) > 1:
        return sys.argv[1]
    if os.environ.get("SHRINK_DATA"):
        return os.environ["SHRINK_DATA"]
    return os.path.join(HERE, "..", "..", "..", "shared", "data")


# ---------------------------------------------------------------- llama2.c

def read_llama2c(path):
    raw = open(path, "rb").read()
    dim, hidden, layers, heads, kv_heads, vocab, seq_len = struct.unpack("<7i", raw[:28])
    shared = vocab > 0
    vocab = abs(vocab)
    f = np.frombuffer(raw[28:], dtype="<f4").astype(np.float64)
    hs = dim // heads
    kv_dim = kv_heads * hs
    off = 0

    def take(*shape):
        nonlocal off
        n = int(np.prod(shape))
        a = f[off:off + n].reshape(shape)
        off += n
        return a

    w = {}
    w["emb"] = take(vocab, dim)
    w["rms_att"] = take(layers, dim)
    w["wq"] = take(layers, dim, dim)
    w["wk"] = take(layers, kv_dim, dim)
    w["wv"] = take(layers, kv_dim, dim)
    w["wo"] = take(layers, dim, dim)
    w["rms_ffn"] = take(layers, dim)
    w["w1"] = take(layers, hidden, dim)
    w["w2"] = take(layers, dim, hidden)
    w["w3"] = take(layers, hidden, dim)
    w["rms_final"] = take(dim)
    take(seq_len, hs // 2)  # freq_cis_real, unused
    take(seq_len, hs // 2)  # freq_cis_imag, unused
    w["wcls"] = w["emb"] if shared else take(vocab, dim)
    assert off == f.size, (off, f.size)
    cfg = dict(dim=dim, hidden=hidden, layers=layers, heads=heads, kv_heads=kv_heads,
               vocab=vocab, seq_len=seq_len, hs=hs)
    return cfg, w


def rmsnorm(x, weight):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + 1e-5) * weight


def rope_pairs(x, cos, sin):
    # x [T, heads, hs]; llama2.c rotates the consecutive pairs (2i, 2i+1).
    x0, x1 = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = x0 * cos - x1 * sin
    out[..., 1::2] = x0 * sin + x1 * cos
    return out


def forward(cfg, w, tokens):
    """Logits [T, vocab] of every position, in float64."""
    T = len(tokens)
    H, KV, hs = cfg["heads"], cfg["kv_heads"], cfg["hs"]
    x = w["emb"][tokens].copy()
    freqs = 1.0 / (10000.0 ** (np.arange(0, hs, 2) / hs))
    ang = np.outer(np.arange(T), freqs)
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    mask = np.triu(np.full((T, T), -np.inf), k=1)
    for l in range(cfg["layers"]):
        xb = rmsnorm(x, w["rms_att"][l])
        q = (xb @ w["wq"][l].T).reshape(T, H, hs)
        k = (xb @ w["wk"][l].T).reshape(T, KV, hs)
        v = (xb @ w["wv"][l].T).reshape(T, KV, hs)
        q, k = rope_pairs(q, cos, sin), rope_pairs(k, cos, sin)
        k = np.repeat(k, H // KV, axis=1)  # query head h reads kv head h // (H/KV)
        v = np.repeat(v, H // KV, axis=1)
        s = np.einsum("thd,shd->hts", q, k) / math.sqrt(hs) + mask
        s = np.exp(s - s.max(axis=-1, keepdims=True))
        p = s / s.sum(axis=-1, keepdims=True)
        att = np.einsum("hts,shd->thd", p, v).reshape(T, H * hs)
        x = x + att @ w["wo"][l].T
        xb = rmsnorm(x, w["rms_ffn"][l])
        g = xb @ w["w1"][l].T
        h = g / (1 + np.exp(-g)) * (xb @ w["w3"][l].T)
        x = x + h @ w["w2"][l].T
    return rmsnorm(x, w["rms_final"]) @ w["wcls"].T


def read_tokenizer(path, vocab):
    raw = open(path, "rb").read()
    off = 4
    pieces = []
    for _ in range(vocab):
        _score, n = struct.unpack("<fi", raw[off:off + 8])
        off += 8
        pieces.append(raw[off:off + n])
        off += n
    return pieces


def decode(pieces, prev, tok):
    # run.c's decode: drop the leading space after BOS, map <0xAB> to a byte.
    p = pieces[tok]
    if prev == 1 and p.startswith(b" "):
        p = p[1:]
    if len(p) == 6 and p.startswith(b"<0x") and p.endswith(b">"):
        p = bytes([int(p[3:5], 16)])
    return p


def stories260k(data):
    d = os.path.join(data, "llama2c", "stories260K")
    cfg, w = read_llama2c(os.path.join(d, "stories260K.bin"))
    pieces = read_tokenizer(os.path.join(d, "tok512.bin"), cfg["vocab"])

    rng = np.random.RandomState(260)
    tokens = [1] + [int(t) for t in rng.randint(3, cfg["vocab"], size=23)]
    logits = forward(cfg, w, tokens)
    positions = [0, 1, 7, 15, 23]

    # Greedy from BOS: 256 samples, as run.c -t 0 -n 256, stopping at BOS.
    seq, text = [1], b""
    for _ in range(256):
        nxt = int(np.argmax(forward(cfg, w, seq)[-1]))
        if nxt == 1:
            break
        text += decode(pieces, seq[-1], nxt)
        seq.append(nxt)

    out = {
        "about": "float64 NumPy llama2.c forward pass on stories260K.bin; written by make_fixtures.py",
        "tokens": tokens,
        "positions": positions,
        "logits": [[float("%.10g" % v) for v in logits[p]] for p in positions],
        "greedy_tokens": seq[1:],
        "greedy_text": text.decode("utf-8"),
    }
    # One line per key (and per logits row) keeps the file small and diffable.
    lines = []
    for k, v in out.items():
        if k == "logits":
            rows = ",\n  ".join(json.dumps(r, separators=(",", ":")) for r in v)
            lines.append(' "logits": [\n  %s]' % rows)
        else:
            lines.append(" %s: %s" % (json.dumps(k), json.dumps(v, separators=(",", ":"))))
    with open(os.path.join(HERE, "stories260K.json"), "w") as f:
        f.write("{\n" + ",\n".join(lines) + "\n}\n")


# ---------------------------------------------------------------- MLP

def write_safetensors(path, tensors):
    """tensors: list of (name, numpy array); dtypes float32 or float64."""
    header, blobs, off = {}, [], 0
    for name, a in tensors:
        a = np.ascontiguousarray(a)
        dt = {np.dtype("float32"): "F32", np.dtype("float64"): "F64"}[a.dtype]
        b = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def mlp(name, sizes, act, seed):
    torch.manual_seed(seed)
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU() if act == "relu" else torch.nn.GELU())
    net = torch.nn.Sequential(*layers)
    x = (torch.randn(9, sizes[0]) * 2).float()
    with torch.no_grad():
        probs = torch.softmax(net.double()(x.double()), dim=-1)
    tensors = [(k, v.float().numpy()) for k, v in net.state_dict().items()]
    tensors += [("input", x.numpy()), ("probs", probs.numpy())]
    write_safetensors(os.path.join(HERE, name), tensors)


def main():
    stories260k(data_dir())
    mlp("mlp_relu.safetensors", [13, 7, 5], "relu", 1)
    mlp("mlp_gelu.safetensors", [13, 11, 7, 5], "gelu", 2)


if __name__ == "__main__":
    main()
