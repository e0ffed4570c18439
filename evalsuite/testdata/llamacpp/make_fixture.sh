#!/bin/bash
# Writes perplexity.json: llama.cpp's own perplexity of the shared GGUF files
# of stories260K on the first 1,000 chunks of 128 tokens of the TinyStories
# text (llama-perplexity --chunks 1000), with the KV cache in f32 and in f16
# (llama.cpp's default), flash attention left at llama.cpp's default (auto, on
# for these models). TestPerplexityLlamaCpp
# holds shrink's engine to these figures.
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
out=$(mktemp)
{
	printf '{\n  "llama_cpp_commit": "%s",\n  "text": "%s",\n  "ctx": 128,\n  "max_chunks": 1000,\n  "results": [\n' "$commit" "$text"
	first=1
	for f in stories260K-F32 stories260K-pad192-F32 stories260K-pad192-Q8_0-pure stories260K-pad192-Q4_0-pure \
		stories260K-pad192-Q4_1-pure stories260K-pad192-Q4_0; do
		for kv in f32 f16; do
			line=$("$bin" -m "$data/gguf/$f.gguf" -f "$data/$text" -c 128 --chunks 1000 -t 2 -ctk $kv -ctv $kv 2>&1 |
				grep -E 'calculating perplexity over|Final estimate')
			chunks=$(sed -n 's/.*over \([0-9]*\) chunks.*/\1/p' <<<"$line")
			ppl=$(sed -n 's/.*PPL = \([0-9.]*\) +\/- \([0-9.]*\).*/\1/p' <<<"$line")
			se=$(sed -n 's/.*PPL = \([0-9.]*\) +\/- \([0-9.]*\).*/\2/p' <<<"$line")
			[ $first = 1 ] || printf ',\n'
			first=0
			printf '    {"file": "gguf/%s.gguf", "kv_cache": "%s", "chunks": %s, "ppl": %s, "ppl_stderr": %s}' \
				"$f" $kv "$chunks" "$ppl" "$se"
		done
	done
	printf '\n  ]\n}\n'
} > "$out"
mv "$out" perplexity.json
