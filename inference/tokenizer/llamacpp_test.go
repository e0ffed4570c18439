package tokenizer

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/format/gguf"
	"github.com/shrinkml/shrink/internal/shareddata"
	"github.com/shrinkml/shrink/model"
)

// TestMatchesLlamaCpp encodes whole texts of the shared data folder as
// llama.cpp's llama-tokenize does (testdata/llamacpp/tokens.json, made by
// make_fixture.sh beside it): tok512 read from the GGUF file llama.cpp's
// converter wrote, and the GPT-2 subset vocabulary under the gpt-2,
// llama-bpe and qwen2 pre-tokenizers, on WikiText-2, Tiny Shakespeare and
// TinyStories; every id must agree.
func TestMatchesLlamaCpp(t *testing.T) {
	var fx struct {
		Cases []struct {
			Vocab  string `json:"vocab"`
			Text   string `json:"text"`
			Count  int    `json:"count"`
			SHA256 string `json:"sha256"`
			Head   []int  `json:"head"`
		} `json:"cases"`
	}
	readJSON(t, "llamacpp/tokens.json", &fx)
	if len(fx.Cases) != 12 {
		t.Fatalf("%d cases in the fixture, want 12", len(fx.Cases))
	}
	type vocab struct {
		tk     *Tokenizer
		addBOS bool // as llama.cpp's tokenizer.ggml.add_bos_token says
	}
	vocabs := map[string]vocab{}
	for _, c := range fx.Cases {
		t.Run(c.Vocab+"/"+c.Text, func(t *testing.T) {
			v, ok := vocabs[c.Vocab]
			if !ok {
				var mt *model.Tokenizer
				if pre, ok := strings.CutPrefix(c.Vocab, "subset-"); ok {
					mt = gpt2Subset(t, pre)
				} else if c.Vocab == "tok512" {
					m, err := gguf.Load(shareddata.Path(t, "gguf/stories260K-F32.gguf"))
					if err != nil {
						t.Fatal(err)
					}
					defer m.Close()
					mt = m.Tokenizer
				} else {
					t.Fatalf("unknown vocabulary %q", c.Vocab)
				}
				tk, err := New(mt)
				if err != nil {
					t.Fatal(err)
				}
				v = vocab{tk, mt.AddBOS}
				vocabs[c.Vocab] = v
			}
			text, err := os.ReadFile(shareddata.Path(t, c.Text))
			if err != nil {
				t.Fatal(err)
			}
			ids := v.tk.Encode(string(text), v.addBOS)
			if n := min(len(ids), len(c.Head)); !equalInts(ids[:n], c.Head) {
				t.Errorf("first ids %v, llama.cpp %v", ids[:n], c.Head)
			}
			var b strings.Builder
			for i, id := range ids {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(strconv.Itoa(id))
			}
			sum := sha256.Sum256([]byte(b.String()))
			if len(ids) != c.Count || hex.EncodeToString(sum[:]) != c.SHA256 {
				t.Errorf("%d ids (SHA-256 of the list %x), llama.cpp gives %d (%s)", len(ids), sum, c.Count, c.SHA256)
			}
		})
	}
}
