#!/usr/bin/env python3
"""Builds spm_tok512.json, the SentencePiece reference encodings of tok512.

There is no tok512.model, so this script builds one: a SentencePiece BPE
ModelProto holding tok512.bin's 512 pieces and scores, with an identity
normalizer, a dummy prefix, no whitespace squeezing and byte fallback. The
official SentencePiece library then encodes a sample of TinyStories lines
(stored by line number and SHA-256 only, since the text is shared data that
must not be copied into the repository), a list of hand-made tricky strings,
and the whole TinyStories file at once (only its token count is kept).

Usage (Debian: apt-get install -y python3-sentencepiece python3-protobuf):

    /usr/bin/python3 make_spm_fixture.py \
        ../../../../shared/data/llama2c/stories260K/tok512.bin \
        ../../../../shared/data/text/tinystories/tinystories_val_first.txt \
        > spm_tok512.json
"""
import hashlib
import json
import struct
import sys

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as pb

# Hand-made strings; the Go test reads them from the fixture, so this list is
# the single source.
TRICKY = [
    "",
    " ",
    "  ",
    "   ",
    "a",
    " a",
    "a ",
    "hello world",
    "Hello  world",
    "  leading spaces",
    "trailing spaces  ",
    "multiple   spaces   here",
    "\n",
    "\n\n",
    "line1\nline2\n\nline4\n",
    "\r\n",
    "\ttab\there\t",
    " \t \n ",
    "Once upon a time, there was a little girl named Lily.",
    "Spot. Spot saw the shiny car and said, \"Wow, Kitty, your car is so bright and clean!\"",
    "naïve café",
    "ñandú",
    "日本語のテキスト",
    "한국어",
    "العربية",
    "Ωmega",
    "emoji 😀🎉 end",
    "🇺🇸",
    "e\u0301",
    "â€œ",
    "â€™s and â€œquotedâ€",
    "\u201cquoted\u201d",
    "It\u2019s",
    "\u2014dash\u2013",
    "wait\u2026",
    "\u00a0nbsp\u00a0",
    "hair\u200aspace",
    "trade\u2122 euro\u20ac",
    "x\u2581y",
    "\u2581",
    "<s>",
    "</s>",
    "<unk>",
    "<0x0A>",
    "a<b>c|d[e]f~g",
    "\x00",
    "a\x01b\x7f",
    "\u00ff\u0100",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "The the THE tHe",
    "12345 67.89 0.5% $100",
    "(parens) {braces} @at #hash ^caret =eq _under",
    "Zzyzx Qq Xx Jj",
    "\U0001F600",
    "\U00010348",
    "mixed\u00e9\u00e9\u00e9",
]


def read_tok(path):
    data = open(path, "rb").read()
    off = 4
    toks = []
    while off < len(data):
        score, n = struct.unpack_from("<fi", data, off)
        off += 8
        toks.append((data[off:off + n], score))
        off += n
    return toks


def build_model(toks):
    m = pb.ModelProto()
    for i, (raw, score) in enumerate(toks):
        p = m.pieces.add()
        if i == 0:
            p.piece, p.type = "<unk>", pb.ModelProto.SentencePiece.UNKNOWN
        elif i == 1:
            p.piece, p.type = "<s>", pb.ModelProto.SentencePiece.CONTROL
        elif i == 2:
            p.piece, p.type = "</s>", pb.ModelProto.SentencePiece.CONTROL
        elif i < 259:
            p.piece, p.type = "<0x%02X>" % (i - 3), pb.ModelProto.SentencePiece.BYTE
            assert raw.decode() == p.piece
        else:
            p.piece, p.type = raw.decode("utf-8").replace(" ", "\u2581"), pb.ModelProto.SentencePiece.NORMAL
        p.score = score
    t = m.trainer_spec
    t.model_type = pb.TrainerSpec.BPE
    t.vocab_size = len(toks)
    t.byte_fallback = True
    t.unk_id, t.bos_id, t.eos_id, t.pad_id = 0, 1, 2, -1
    n = m.normalizer_spec
    n.name = "identity"
    n.add_dummy_prefix = True
    n.remove_extra_whitespaces = False
    n.escape_whitespaces = True
    return m


def main():
    tok_path, text_path = sys.argv[1], sys.argv[2]
    toks = read_tok(tok_path)
    sp = spm.SentencePieceProcessor()
    sp.LoadFromSerializedProto(build_model(toks).SerializeToString())
    text = open(text_path, "rb").read().decode("utf-8")
    lines = text.split("\n")
    sample = []
    for i in range(0, len(lines), 17):
        line = lines[i]
        if not line:
            continue
        sample.append({
            "line": i,
            "sha256": hashlib.sha256(line.encode()).hexdigest(),
            "ids": sp.encode(line),
        })
    # Also every line with a non-ASCII character, up to 60 of them.
    extra = [i for i, l in enumerate(lines) if i % 17 and any(ord(c) > 127 for c in l)][:60]
    for i in extra:
        sample.append({
            "line": i,
            "sha256": hashlib.sha256(lines[i].encode()).hexdigest(),
            "ids": sp.encode(lines[i]),
        })
    out = {
        "about": "SentencePiece %s BPE encodings of tok512 (see make_spm_fixture.py); ids exclude BOS" % spm.__version__,
        "text_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "whole_file_tokens_with_bos": 1 + len(sp.encode(text)),
        "tricky": [{"text": s, "ids": sp.encode(s)} for s in TRICKY],
        "lines": sample,
    }
    json.dump(out, sys.stdout, ensure_ascii=True, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
