#!/bin/bash
# Writes perplexity.json: llama.cpp's own perplexity, on the first 1,000
# chunks of 128 tokens of the TinyStories text (llama-perplexity --chunks
# 1000), of
#   - the shared GGUF files of stories260K, with the KV cache in f32 and in
#     f16 (llama.cpp's default), flash attention left at llama.cpp's default
#     (auto, on for these models): TestPerplexityLlamaCpp;
#   - the random Qwen2 model that TestPerplexityLlamaCppQwen2 writes (run here
#     with SHRINK_WRITE_QWEN2 to keep the file), with the SHA-256 of its bytes.
#
# llama.cpp is built from source; the copy used for the committed file is the
# one npm's node-llama-cpp@3.21.1 bundles (llama/gitRelease.bundle, llama.cpp
# commit 80fb11a):
#   npm i -E node-llama-cpp@3.21.1
#   git clone node_modules/node-llama-cpp/llama/gitRelease.bundle llama.cpp
#   cmake -S llama.cpp -B llama.cpp/build -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
#       -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF
#   cmake --build llama.cpp/build -j --target llama-perplexity
# then, from this folder:
#   LLAMA_PERPLEXITY=llama.cpp/build/bin/llama-perplexity SHRINK_DATA=../../../../shared/data ./make_fixture.sh
set -euo pipefail
bin=${LLAMA_PERPLEXITY:?set LLAMA_PERPLEXITY to llama.cpp\'s llama-perplexity}
data=${SHRINK_DATA:?set SHRINK_DATA to the shared data folder}
text=text/tinystories/tinystories_val_first.txt
commit=$(cd "$(dirname "$bin")" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# score FILE [ARGS...]: prints "chunks ppl stderr" from llama-perplexity.
score() {
	local f=$1 line
	shift
	line=$("$bin" -m "$f" -f "$data/$text" -c 128 --chunks 1000 -t 2 "$@" 2>&1 |
		grep -E 'calculating perplexity over|Final estimate')
	sed -n 's/.*over \([0-9]*\) chunks.*/\1/p' <<<"$line" | tr '\n' ' '
	sed -n 's/.*PPL = \([0-9.]*\) +\/- \([0-9.]*\).*/\1 \2/p' <<<"$line"
}

# The test fails its hash check against the old fixture, after writing the file.
SHRINK_WRITE_QWEN2="$tmp/qwen2.gguf" SHRINK_DATA="$data" go test ../.. -run '^TestPerplexityLlamaCppQwen2$' -count=1 > /dev/null 2>&1 || true
sha=$(sha256sum "$tmp/qwen2.gguf" | cut -d' ' -f1)
read -r chunks ppl se < <(score "$tmp/qwen2.gguf")
{
	printf '{\n  "llama_cpp_commit": "%s",\n  "text": "%s",\n  "ctx": 128,\n  "max_chunks": 1000,\n' "$commit" "$text"
	printf '  "qwen2": {"sha256": "%s", "chunks": %s, "ppl": %s, "ppl_stderr": %s},\n' "$sha" "$chunks" "$ppl" "$se"
	printf '  "results": [\n'
	first=1
	for f in stories260K-F32 stories260K-pad192-F32 stories260K-pad192-Q8_0-pure stories260K-pad192-Q4_0-pure \
		stories260K-pad192-Q4_1-pure stories260K-pad192-Q4_0; do
		for kv in f32 f16; do
			read -r chunks ppl se < <(score "$data/gguf/$f.gguf" -ctk $kv -ctv $kv)
			[ $first = 1 ] || printf ',\n'
			first=0
			printf '    {"file": "gguf/%s.gguf", "kv_cache": "%s", "chunks": %s, "ppl": %s, "ppl_stderr": %s}' \
				"$f" $kv "$chunks" "$ppl" "$se"
		done
	done
	printf '\n  ]\n}\n'
} > "$tmp/perplexity.json"
mv "$tmp/perplexity.json" perplexity.json
