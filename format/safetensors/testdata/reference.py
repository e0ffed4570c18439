#!/usr/bin/env python3
"""An independent safetensors reader and writer (standard library only).

It follows the format description of the reference implementation
(huggingface/safetensors): 8-byte little-endian header length, compact JSON
header with __metadata__ first, tensors laid out by descending dtype alignment
then by name, header padded with spaces to a multiple of 8 bytes.

  reference.py write OUT.safetensors   writes the fixture tensors below
  reference.py read FILE.safetensors   prints the tensors' values as JSON

The Go tests never run this script; they read the fixture it wrote
(reference.safetensors) and compare Go's own encoding of the same tensors with
its bytes.
"""
import json
import struct
import sys

# Element size and struct code of each dtype; BF16 is handled by hand.
DTYPES = {"F32": (4, "f"), "F16": (2, "e"), "BF16": (2, None), "I32": (4, "i"), "I8": (1, "b"), "U8": (1, "B")}
# The reference Dtype enum order (increasing alignment).
RANK = {"U8": 1, "I8": 2, "F16": 3, "BF16": 4, "I32": 5, "F32": 6}

FIXTURE = {
    "model.embed_tokens.weight": ("F32", [3, 4], [i * 0.25 - 1.0 for i in range(12)]),
    "model.norm.weight": ("F16", [4], [1.0, -2.5, 0.5, 65504.0]),
    "lm_head.weight": ("BF16", [2, 3], [1.0, -0.5, 3.0, 0.0078125, -256.0, 1.5]),
    "ids": ("I32", [5], [-3, 0, 7, 2147483647, -2147483648]),
    "mask": ("U8", [2, 2], [0, 1, 255, 7]),
    "q8": ("I8", [3], [-128, 0, 127]),
    "empty": ("F32", [0, 4], []),
    'we\u00efrd\t"name"\\\u2581': ("F32", [], [42.0]),
}
METADATA = {"format": "pt", "note": "line\nbreak \u00e9\u0001"}


def encode(dtype, values):
    if dtype == "BF16":
        out = b""
        for v in values:
            bits = struct.unpack("<I", struct.pack("<f", v))[0]
            assert bits & 0xFFFF == 0, "fixture values must be exact in bfloat16"
            out += struct.pack("<H", bits >> 16)
        return out
    size, code = DTYPES[dtype]
    return struct.pack("<%d%s" % (len(values), code), *values)


def decode(dtype, raw):
    size, code = DTYPES[dtype]
    n = len(raw) // size
    if dtype == "BF16":
        return [struct.unpack("<f", struct.pack("<I", h << 16))[0] for h in struct.unpack("<%dH" % n, raw)]
    return list(struct.unpack("<%d%s" % (n, code), raw))


def write(path):
    items = sorted(FIXTURE.items(), key=lambda kv: (-RANK[kv[1][0]], kv[0]))
    header = {"__metadata__": dict(sorted(METADATA.items()))}
    data = b""
    for name, (dtype, shape, values) in items:
        raw = encode(dtype, values)
        n = 1
        for d in shape:
            n *= d
        assert len(raw) == n * DTYPES[dtype][0]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def read(path):
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack_from("<Q", buf, 0)
    assert 8 + n <= len(buf), "header runs past the end"
    assert n % 8 == 0, "header is not padded to 8 bytes"
    header = json.loads(buf[8 : 8 + n].decode("utf-8"))
    start = 8 + n
    out = {"__metadata__": header.pop("__metadata__", None), "tensors": {}}
    end = 0
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
        b, e = info["data_offsets"]
        assert b == end, "tensor %r does not start where the previous one ended" % name
        end = e
        count = 1
        for d in info["shape"]:
            count *= d
        assert e - b == count * DTYPES[info["dtype"]][0], "size mismatch for %r" % name
        out["tensors"][name] = {"dtype": info["dtype"], "shape": info["shape"], "offsets": [b, e],
                                "values": decode(info["dtype"], buf[start + b : start + e])}
    assert start + end == len(buf), "data does not end at the end of the file"
    json.dump(out, sys.stdout, indent=1, sort_keys=True, ensure_ascii=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("read", "write"):
        sys.exit(__doc__)
    (write if sys.argv[1] == "write" else read)(sys.argv[2])
