// Command mkvocab writes the GGUF files that make_fixture.sh gives
// llama.cpp's llama-tokenize: a tiny random llama model carrying the GPT-2
// subset vocabulary of ../../gpt2_subset_tokenizer.json (as the tokenizer
// tests build it) under each of the pre-tokenizers gpt-2, llama-bpe and
// qwen2, as OUTDIR/subset-PRE.gguf.
//
//	go run ./inference/tokenizer/testdata/llamacpp/mkvocab OUTDIR
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/shrinkml/shrink/format/gguf"
	"github.com/shrinkml/shrink/internal/testvocab"
	"github.com/shrinkml/shrink/model"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: mkvocab OUTDIR")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "mkvocab:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	data, err := os.ReadFile("inference/tokenizer/testdata/gpt2_subset_tokenizer.json")
	if err != nil {
		return err
	}
	for _, pre := range []string{"gpt-2", "llama-bpe", "qwen2"} {
		mt, err := testvocab.GPT2Subset(data, pre)
		if err != nil {
			return err
		}
		c := model.Presets["stories260k"]
		c.VocabSize = len(mt.Tokens)
		m, err := model.Synthesize(c, 1)
		if err != nil {
			return err
		}
		m.Tokenizer = mt
		if err := gguf.Save(filepath.Join(dir, "subset-"+pre+".gguf"), m, true); err != nil {
			return err
		}
	}
	return nil
}
