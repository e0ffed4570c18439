#!/bin/bash
# Writes tokens.json: how llama.cpp's own llama-tokenize encodes three whole
# texts of the shared data folder (WikiText-2 test, Tiny Shakespeare,
# TinyStories) under tok512 (the shared stories260K-F32.gguf, which llama.cpp's
# converter wrote) and under the GPT-2 subset vocabulary with the gpt-2,
# llama-bpe and qwen2 pre-tokenizers (GGUF files written by mkvocab). Special
# tokens in the text are not parsed, as in llama-perplexity. Each case keeps
# the count, the first 64 ids and the SHA-256 of all ids joined by commas;
# TestMatchesLlamaCpp encodes the same texts and compares.
#
# llama.cpp is built as evalsuite/testdata/llamacpp/make_fixture.sh says
# (target llama-tokenize). From the repository root:
#   LLAMA_TOKENIZE=.../build/bin/llama-tokenize SHRINK_DATA=../shared/data \
#       inference/tokenizer/testdata/llamacpp/make_fixture.sh
set -euo pipefail
bin=${LLAMA_TOKENIZE:?set LLAMA_TOKENIZE to llama.cpp\'s llama-tokenize}
data=${SHRINK_DATA:?set SHRINK_DATA to the shared data folder}
here=inference/tokenizer/testdata/llamacpp
commit=$(cd "$(dirname "$bin")" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go run ./$here/mkvocab "$tmp"
{
	printf '{\n  "llama_cpp_commit": "%s",\n  "cases": [\n' "$commit"
	first=1
	for vocab in tok512 subset-gpt-2 subset-llama-bpe subset-qwen2; do
		if [ $vocab = tok512 ]; then gguf=$data/gguf/stories260K-F32.gguf; else gguf=$tmp/$vocab.gguf; fi
		for text in text/wikitext-2/test.txt text/tinyshakespeare/input.txt text/tinystories/tinystories_val_first.txt; do
			"$bin" -m "$gguf" -f "$data/$text" --ids --no-parse-special --log-disable 2>/dev/null | tail -n 1 > "$tmp/ids"
			[ $first = 1 ] || printf ',\n'
			first=0
			/usr/bin/python3 - "$vocab" "$text" "$tmp/ids" <<'PY'
import hashlib, json, sys
vocab, text, path = sys.argv[1:]
ids = json.loads(open(path).read())
joined = ",".join(str(i) for i in ids).encode()
print('    {"vocab": %s, "text": %s, "count": %d, "sha256": "%s", "head": %s}' % (
    json.dumps(vocab), json.dumps(text), len(ids), hashlib.sha256(joined).hexdigest(),
    json.dumps(ids[:64], separators=(",", ":"))), end="")
PY
		done
	done
	printf '\n  ]\n}\n'
} > "$tmp/tokens.json"
mv "$tmp/tokens.json" $here/tokens.json
