package llama2c

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"github.com/shrinkml/shrink/internal/fileio"
	"github.com/shrinkml/shrink/internal/shareddata"
	"github.com/shrinkml/shrink/model"
)

func TestLoadStories260K(t *testing.T) {
	path := shareddata.Path(t, shareddata.Stories260KBin)
	m, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	want := model.Config{
		Arch: "llama", HiddenSize: 64, IntermediateSize: 172, NumLayers: 5, NumHeads: 8,
		NumKVHeads: 4, HeadDim: 8, VocabSize: 512, ContextLength: 512, RMSNormEps: 1e-5,
		RopeTheta: 10000, RopeLayout: model.RopePairs, TiedEmbeddings: true,
	}
	if fmt.Sprintf("%+v", m.Config) != fmt.Sprintf("%+v", want) {
		t.Errorf("config\n got %+v\nwant %+v", m.Config, want)
	}
	// The data README: the parameter arrays hold 260,032 floats.
	if got := m.Parameters(); got != 260032 {
		t.Errorf("Parameters() = %d, want 260032", got)
	}
	if got := len(m.Tensors); got != 1+5*9+1 {
		t.Errorf("%d tensors, want 47", got)
	}
	if m.Tensor(model.OutputHead) != nil {
		t.Errorf("shared classifier loaded as a separate %s", model.OutputHead)
	}
	if m.Tokenizer == nil || len(m.Tokenizer.Tokens) != 512 {
		t.Errorf("tok512.bin beside the model was not attached")
	}
	if m.Source != path {
		t.Errorf("Source = %q, want %q", m.Source, path)
	}

	// Spot checks against the raw file. Element offsets into the float data,
	// worked out by hand from the layout (dim 64, kv_dim 32, hidden 172, 5 layers):
	// embedding 0 (512*64 = 32768 floats), rms_att 32768 (5*64), wq 33088
	// (5*4096), wk 53568 (5*2048), wv 63808, wo 74048 (5*4096), rms_ffn 94528,
	// w1 94848 (5*11008), w2 149888, w3 204928, rms_final 259968, end 260032.
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name   string
		index  int // element index within the tensor
		offset int // element index within the file's float data
	}{
		{model.TokenEmbedding, 0, 0},
		{model.TokenEmbedding, 511*64 + 63, 32767},
		{model.LayerTensor(0, model.AttnNorm), 0, 32768},
		{model.LayerTensor(4, model.AttnNorm), 63, 33087},
		{model.LayerTensor(0, model.AttnQ), 0, 33088},
		{model.LayerTensor(2, model.AttnQ), 3*64 + 5, 41477},
		{model.LayerTensor(1, model.AttnK), 31*64 + 63, 57663},
		{model.LayerTensor(0, model.AttnV), 0, 63808},
		{model.LayerTensor(4, model.AttnO), 63*64 + 63, 94527},
		{model.LayerTensor(2, model.FFNNorm), 7, 94663},
		{model.LayerTensor(3, model.FFNGate), 100*64 + 10, 134282},
		{model.LayerTensor(4, model.FFNDown), 63*172 + 171, 204927},
		{model.LayerTensor(0, model.FFNUp), 0, 204928},
		{model.FinalNorm, 63, 260031},
	}
	for _, c := range checks {
		tt := m.Tensor(c.name)
		if tt == nil {
			t.Errorf("tensor %s missing", c.name)
			continue
		}
		vals, err := tt.Float32()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := vals[c.index], f32At(raw, c.offset); math.Float32bits(got) != math.Float32bits(want) {
			t.Errorf("%s[%d] = %v, the file has %v at float %d", c.name, c.index, got, want, c.offset)
		}
	}
}

// TestMatchesLlamaCppConversion compares every tensor and the vocabulary with
// the GGUF that llama.cpp's own llama2.c converter made from the same files.
func TestMatchesLlamaCppConversion(t *testing.T) {
	m, err := Load(shareddata.Path(t, shareddata.Stories260KBin))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ref := readRefGGUF(t, shareddata.Path(t, "gguf/stories260K-F32.gguf"))

	ggufName := map[string]string{
		model.TokenEmbedding: "token_embd.weight",
		model.FinalNorm:      "output_norm.weight",
	}
	for l := 0; l < m.Config.NumLayers; l++ {
		for suffix, g := range map[string]string{
			model.AttnNorm: "attn_norm", model.AttnQ: "attn_q", model.AttnK: "attn_k", model.AttnV: "attn_v",
			model.AttnO: "attn_output", model.FFNNorm: "ffn_norm", model.FFNGate: "ffn_gate",
			model.FFNUp: "ffn_up", model.FFNDown: "ffn_down",
		} {
			ggufName[model.LayerTensor(l, suffix)] = fmt.Sprintf("blk.%d.%s.weight", l, g)
		}
	}
	// llama.cpp's converter writes the shared classifier out as a copy.
	if len(ref.tensors) != len(m.Tensors)+1 {
		t.Errorf("llama.cpp wrote %d tensors, Load gives %d plus the shared classifier", len(ref.tensors), len(m.Tensors))
	}
	if !bytes.Equal(ref.tensors["output.weight"].data, m.Tensor(model.TokenEmbedding).Data) {
		t.Errorf("llama.cpp's output.weight is not the shared embedding")
	}
	for _, tt := range m.Tensors {
		rt, ok := ref.tensors[ggufName[tt.Name]]
		if !ok {
			t.Errorf("%s: no GGUF tensor %q", tt.Name, ggufName[tt.Name])
			continue
		}
		if rt.ne[0] != uint64(tt.Cols()) {
			t.Errorf("%s: GGUF rows are %d long, Load's %d", tt.Name, rt.ne[0], tt.Cols())
		}
		if !bytes.Equal(rt.data, tt.Data) {
			t.Errorf("%s: data differs from llama.cpp's %s", tt.Name, ggufName[tt.Name])
		}
	}

	tok := m.Tokenizer
	tokens := ref.kv["tokenizer.ggml.tokens"].([]any)
	scores := ref.kv["tokenizer.ggml.scores"].([]any)
	types := ref.kv["tokenizer.ggml.token_type"].([]any)
	if len(tokens) != len(tok.Tokens) {
		t.Fatalf("llama.cpp has %d tokens, LoadTokenizer %d", len(tokens), len(tok.Tokens))
	}
	for i := range tokens {
		if tokens[i].(string) != tok.Tokens[i] {
			t.Errorf("token %d = %q, llama.cpp has %q", i, tok.Tokens[i], tokens[i])
		}
		if math.Float32bits(scores[i].(float32)) != math.Float32bits(tok.Scores[i]) {
			t.Errorf("token %d score = %v, llama.cpp has %v", i, tok.Scores[i], scores[i])
		}
		if model.TokenType(types[i].(int32)) != tok.Types[i] {
			t.Errorf("token %d (%q) type = %d, llama.cpp has %d", i, tok.Tokens[i], tok.Types[i], types[i])
		}
	}
	for key, want := range map[string]int{
		"tokenizer.ggml.bos_token_id": tok.BOS, "tokenizer.ggml.eos_token_id": tok.EOS,
		"tokenizer.ggml.unknown_token_id": tok.UNK,
		"llama.context_length":            m.Config.ContextLength, "llama.rope.dimension_count": m.Config.HeadDim,
	} {
		if got := int(ref.kv[key].(uint32)); got != want {
			t.Errorf("%s = %d in llama.cpp's file, Load says %d", key, got, want)
		}
	}
	if eps := ref.kv["llama.attention.layer_norm_rms_epsilon"].(float32); eps != float32(m.Config.RMSNormEps) {
		t.Errorf("rms eps %v in llama.cpp's file, Load says %v", eps, m.Config.RMSNormEps)
	}
}

func TestSaveReproducesStories260K(t *testing.T) {
	path := shareddata.Path(t, shareddata.Stories260KBin)
	m, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	out := filepath.Join(t.TempDir(), "copy.bin")
	if err := Save(out, m, false); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(path)
	got, _ := os.ReadFile(out)
	if !bytes.Equal(got, want) {
		t.Errorf("saved file differs from %s (%d vs %d bytes)", path, len(got), len(want))
	}

	// Without the patch, only the RoPE tables may differ, and by one ulp at most.
	bare := *m
	bare.Metadata = nil
	got = encodeBytes(t, &bare)
	ropeStart := 28 + 4*260032
	if !bytes.Equal(got[:ropeStart], want[:ropeStart]) {
		t.Errorf("weights differ from the original")
	}
	diffs := 0
	for i := 260032; i < 260032+2*512*4; i++ {
		a, b := math.Float32bits(f32At(got, i)), math.Float32bits(f32At(want, i))
		if a != b {
			diffs++
			if d := int64(a) - int64(b); d != 1 && d != -1 {
				t.Errorf("RoPE entry %d: bits %#x, PyTorch wrote %#x", i-260032, a, b)
			}
		}
	}
	if patch := m.Metadata[MetaRopePatch].([]uint32); diffs != len(patch)/2 {
		t.Errorf("%d RoPE entries differ, the patch holds %d", diffs, len(patch)/2)
	}
}

func TestRopeTables(t *testing.T) {
	re, im := ropeTables(8, 512)
	// Exact values: angle t * 10^(-2i/8); cos(0) = 1, sin(0) = 0.
	for i := 0; i < 4; i++ {
		if re[i] != 1 || im[i] != 0 {
			t.Errorf("position 0, pair %d: (%v, %v), want (1, 0)", i, re[i], im[i])
		}
	}
	for _, c := range []struct {
		t, i  int
		angle float64
	}{{1, 0, 1}, {7, 1, float64(float32(7) * float32(0.1))}, {511, 3, float64(float32(511) * float32(0.001))}} {
		k := c.t*4 + c.i
		if re[k] != float32(math.Cos(c.angle)) || im[k] != float32(math.Sin(c.angle)) {
			t.Errorf("t=%d i=%d: (%v, %v), want cos/sin of %v", c.t, c.i, re[k], im[k], c.angle)
		}
	}
	// freqs for head size 128 follow 1/10000^(2i/128) to float32 precision.
	re, _ = ropeTables(128, 2)
	for i := 0; i < 64; i++ {
		want := math.Cos(math.Pow(10000, -float64(2*i)/128))
		if d := math.Abs(float64(re[64+i]) - want); d > 1e-6 {
			t.Errorf("head size 128, pair %d: cos = %v, want %v", i, re[64+i], want)
		}
	}
}

func TestAliasing(t *testing.T) {
	for _, tied := range []bool{true, false} {
		s := tiny
		s.tied = tied
		buf := encodeBytes(t, tinyModel(s))
		m, err := parse("mem", buf)
		if err != nil {
			t.Fatal(err)
		}
		// Offsets in file order, computed from the layout.
		kv := s.kvHeads * s.dim / s.heads
		off := 28
		at := map[string]int{}
		place := func(n int, names ...string) {
			for _, name := range names {
				at[name] = off
				off += 4 * n
			}
		}
		layers := func(suffix string, n int) {
			for l := 0; l < s.layers; l++ {
				place(n, model.LayerTensor(l, suffix))
			}
		}
		place(s.vocab*s.dim, model.TokenEmbedding)
		layers(model.AttnNorm, s.dim)
		layers(model.AttnQ, s.dim*s.dim)
		layers(model.AttnK, kv*s.dim)
		layers(model.AttnV, kv*s.dim)
		layers(model.AttnO, s.dim*s.dim)
		layers(model.FFNNorm, s.dim)
		layers(model.FFNGate, s.hidden*s.dim)
		layers(model.FFNDown, s.hidden*s.dim)
		layers(model.FFNUp, s.hidden*s.dim)
		place(s.dim, model.FinalNorm)
		off += 2 * 4 * s.seqLen * s.dim / s.heads / 2
		if !tied {
			place(s.vocab*s.dim, model.OutputHead)
		}
		if off != len(buf) {
			t.Fatalf("layout accounts for %d bytes, the file has %d", off, len(buf))
		}
		for _, tt := range m.Tensors {
			o, ok := at[tt.Name]
			if !ok {
				t.Errorf("unexpected tensor %s", tt.Name)
				continue
			}
			if &tt.Data[0] != &buf[o] {
				t.Errorf("%s does not alias the file at byte %d", tt.Name, o)
			}
			if cap(tt.Data) != len(tt.Data) {
				t.Errorf("%s: capacity %d reaches past its %d bytes", tt.Name, cap(tt.Data), len(tt.Data))
			}
		}
	}
}

// TestLoadIsZeroCopy checks that Load's tensors are views of one mapping laid
// out like the file, not copies.
func TestLoadIsZeroCopy(t *testing.T) {
	path := shareddata.Path(t, shareddata.Stories260KBin)
	m, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	base := uintptr(unsafe.Pointer(&m.Tensor(model.TokenEmbedding).Data[0])) - 28
	for name, off := range map[string]uintptr{
		model.LayerTensor(0, model.AttnNorm): 28 + 4*32768,
		model.LayerTensor(3, model.FFNGate):  28 + 4*(94848+3*11008),
		model.FinalNorm:                      28 + 4*259968,
	} {
		if got := uintptr(unsafe.Pointer(&m.Tensor(name).Data[0])) - base; got != off {
			t.Errorf("%s starts %d bytes into the mapping, want %d", name, got, off)
		}
	}
	vals, err := m.Tensor(model.TokenEmbedding).Float32()
	if err != nil {
		t.Fatal(err)
	}
	if uintptr(unsafe.Pointer(&vals[0])) != base+28 {
		t.Errorf("Float32 of a mapped F32 tensor copied the data")
	}
}

func TestSaveVariants(t *testing.T) {
	t.Run("untied", func(t *testing.T) {
		s := tiny
		s.tied = false
		m := tinyModel(s)
		b := encodeBytes(t, m)
		if v := int32(b[20]) | int32(b[21])<<8 | int32(b[22])<<16 | int32(b[23])<<24; v != -16 {
			t.Errorf("vocab_size field = %d, want -16 for a separate classifier", v)
		}
		back, err := parse("mem", b)
		if err != nil {
			t.Fatal(err)
		}
		if back.Config.TiedEmbeddings {
			t.Errorf("separate classifier read back as tied")
		}
		assertSameTensors(t, m, back)
	})
	t.Run("f16 and bf16", func(t *testing.T) {
		m := tinyModel(tiny)
		want := tinyModel(tiny)
		for i, tt := range m.Tensors {
			d := model.F16
			if i%2 == 1 {
				d = model.BF16
			}
			c, err := tt.Convert(d)
			if err != nil {
				t.Fatal(err)
			}
			m.Tensors[i] = c
			vals, _ := c.Float32()
			want.Tensors[i] = model.NewF32(tt.Name, tt.Shape, vals)
		}
		back, err := parse("mem", encodeBytes(t, m))
		if err != nil {
			t.Fatal(err)
		}
		assertSameTensors(t, want, back)
	})
	t.Run("rope half layout", func(t *testing.T) {
		pairs := tinyModel(tiny)
		half, err := pairs.WithRopeLayout(model.RopeHalf)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(half.Tensor(model.LayerTensor(0, model.AttnQ)).Data, pairs.Tensor(model.LayerTensor(0, model.AttnQ)).Data) {
			t.Fatal("the permutation changed nothing; the test model is too regular")
		}
		if !bytes.Equal(encodeBytes(t, half), encodeBytes(t, pairs)) {
			t.Errorf("a rotate-half model was not written in pair order")
		}
	})
	t.Run("force", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "m.bin")
		m := tinyModel(tiny)
		if err := Save(p, m, false); err != nil {
			t.Fatal(err)
		}
		if err := Save(p, m, false); !errors.Is(err, fileio.ErrExists) {
			t.Errorf("second Save without force: %v, want ErrExists", err)
		}
		if err := Save(p, m, true); err != nil {
			t.Errorf("Save with force: %v", err)
		}
		back, err := Load(p)
		if err != nil {
			t.Fatal(err)
		}
		defer back.Close()
		assertSameTensors(t, m, back)
		if back.Tokenizer != nil || back.Metadata != nil {
			t.Errorf("tokenizer %v, metadata %v; want neither", back.Tokenizer, back.Metadata)
		}
	})
}

func assertSameTensors(t *testing.T, want, got *model.Model) {
	t.Helper()
	if len(want.Tensors) != len(got.Tensors) {
		t.Fatalf("%d tensors, want %d", len(got.Tensors), len(want.Tensors))
	}
	for _, w := range want.Tensors {
		g := got.Tensor(w.Name)
		if g == nil {
			t.Errorf("%s missing", w.Name)
			continue
		}
		if fmt.Sprint(g.Shape) != fmt.Sprint(w.Shape) || g.DType != w.DType || !bytes.Equal(g.Data, w.Data) {
			t.Errorf("%s: got %s %v, want %s %v (or the data differs)", w.Name, g.DType, g.Shape, w.DType, w.Shape)
		}
	}
}

func TestSaveErrors(t *testing.T) {
	cases := []struct {
		name   string
		change func(m *model.Model)
		want   string
	}{
		{"mlp", func(m *model.Model) { m.Config.Arch = "mlp" }, `architecture "mlp" cannot be stored`},
		{"bias", func(m *model.Model) { m.Config.QKVBias = true }, "q/k/v biases"},
		{"theta", func(m *model.Model) { m.Config.RopeTheta = 500000 }, "rope theta 500000 cannot be stored"},
		{"eps", func(m *model.Model) { m.Config.RMSNormEps = 1e-6 }, "rms norm eps 1e-06 cannot be stored"},
		{"head dim", func(m *model.Model) {
			c := m.Config
			c.HeadDim = 8 // q_proj becomes [16, 8]
			*m = *fromConfig(c)
		}, "head dim 8 times 2 heads is not the hidden size 8"},
		{"extra tensor", func(m *model.Model) {
			m.Tensors = append(m.Tensors, model.NewF32("rope.freqs", []int{2}, []float32{1, 2}))
		}, `tensor "rope.freqs" has no place`},
		{"tied with head", func(m *model.Model) {
			m.Tensors = append(m.Tensors, model.NewF32(model.OutputHead, []int{16, 8}, make([]float32, 128)))
		}, `tensor "lm_head.weight" has no place`},
		{"missing", func(m *model.Model) { m.Tensors = m.Tensors[1:] }, `needs tensor "model.embed_tokens.weight"`},
		{"quantized", func(m *model.Model) { *m = *quantizedModel() }, `"model.embed_tokens.weight" is Q8_0; llama2.c stores float32 only`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := tinyModel(tiny)
			c.change(m)
			p := filepath.Join(t.TempDir(), "out.bin")
			err := Save(p, m, false)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("Save: %v, want an error naming %s and containing %q", err, p, c.want)
			}
			if _, statErr := os.Stat(p); statErr == nil {
				t.Errorf("a failed Save left %s behind", p)
			}
		})
	}
}

// quantizedModel is a consistent model (dim 32) whose embedding is Q8_0.
func quantizedModel() *model.Model {
	s := tiny
	s.dim, s.heads, s.kvHeads = 32, 2, 1
	m := tinyModel(s)
	tt := m.Tensor(model.TokenEmbedding)
	*tt = model.Tensor{Name: tt.Name, DType: model.Q8_0, Shape: tt.Shape, Data: make([]byte, s.vocab*34)}
	return m
}

func TestLoadErrors(t *testing.T) {
	valid := encodeBytes(t, tinyModel(tiny))
	hdr := func(v ...int32) [7]int32 { return [7]int32(v) }
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "file has 0 bytes, too short for the 28-byte header"},
		{"truncated header", valid[:27], "file has 27 bytes, too short for the 28-byte header"},
		{"zero dim", rawHeader(hdr(0, 12, 2, 2, 1, 16, 4), 0), "dim 0 is not positive"},
		{"negative layers", rawHeader(hdr(8, 12, -2, 2, 1, 16, 4), 0), "n_layers -2 is not positive"},
		{"zero vocab", rawHeader(hdr(8, 12, 2, 2, 1, 0, 4), 0), "vocab_size 0 is not positive"},
		{"zero seq", rawHeader(hdr(8, 12, 2, 2, 1, 16, 0), 0), "seq_len 0 is not positive"},
		{"min int vocab", rawHeader(hdr(8, 12, 2, 2, 1, math.MinInt32, 4), 0), "vocab_size 2147483648 is too large"},
		{"huge dim", rawHeader(hdr(1<<25, 12, 2, 2, 1, 16, 4), 0), "dim 33554432 is too large (limit 16777216)"},
		{"heads", rawHeader(hdr(8, 12, 2, 3, 1, 16, 4), 0), "n_heads 3 does not divide dim 8"},
		{"kv heads", rawHeader(hdr(8, 12, 2, 4, 3, 16, 4), 0), "n_kv_heads 3 does not divide n_heads 4"},
		{"odd head size", rawHeader(hdr(6, 12, 2, 2, 1, 16, 4), 0), "head size 3 (dim/n_heads) is odd"},
		{"short by one float", valid[:len(valid)-4], fmt.Sprintf("with a shared classifier needs %d bytes, the file has %d", len(valid), len(valid)-4)},
		{"one float extra", append(append([]byte(nil), valid...), 0, 0, 0, 0), fmt.Sprintf("needs %d bytes, the file has %d", len(valid), len(valid)+4)},
		{"separate classifier missing", func() []byte {
			b := append([]byte(nil), valid...)
			b[20], b[21], b[22], b[23] = 0xf0, 0xff, 0xff, 0xff // vocab_size -16
			return b
		}(), fmt.Sprintf("with a separate classifier needs %d bytes, the file has %d", len(valid)+4*16*8, len(valid))},
		{"huge sizes", rawHeader(hdr(1<<24, 1<<24, 1<<24, 1<<4, 1<<4, 1<<24, 1<<24), 0),
			"describes more than 288230376151711744 floats (over 1152921504606846976 bytes); the file has 28 bytes"},
		{"big but countable", rawHeader(hdr(4096, 11008, 32, 32, 32, 32000, 2048), 0),
			"needs 26430423068 bytes, the file has 28"},
		{"version 1", rawHeader(hdr(0x616b3432, 1, 0, 0, 0, 0, 0), 0), `magic "ak42" of llama2.c's version-1 export`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeTemp(t, "model.bin", c.data)
			m, err := Load(p)
			if err == nil {
				m.Close()
				t.Fatalf("Load succeeded, want an error containing %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
				t.Errorf("Load: %v\nwant an error naming %s and containing %q", err, p, c.want)
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.bin")); err == nil || !strings.Contains(err.Error(), "missing.bin") {
		t.Errorf("Load of a missing file: %v", err)
	}
}

func TestLoadAttachesTokenizer(t *testing.T) {
	modelBytes := encodeBytes(t, tinyModel(tiny)) // vocab 16
	tokens := make([]string, 16)
	for i := range tokens {
		tokens[i] = fmt.Sprintf("t%d", i)
	}
	cases := []struct {
		name  string
		files map[string][]byte
		want  string // first token, "" for no tokenizer
		err   string
	}{
		{"none", nil, "", ""},
		{"tokenizer.bin", map[string][]byte{"tokenizer.bin": tokFile(3, tokens...)}, "t0", ""},
		{"tok16.bin preferred", map[string][]byte{
			"tokenizer.bin": tokFile(3, append([]string{"x"}, tokens[1:]...)...),
			"tok16.bin":     tokFile(3, tokens...),
		}, "t0", ""},
		{"tok other size ignored", map[string][]byte{"tok512.bin": tokFile(3, "a")}, "", ""},
		{"vocab mismatch", map[string][]byte{"tokenizer.bin": tokFile(3, tokens[:10]...)}, "",
			"file ends after 10 tokens, the model's vocabulary has 16"},
		{"too many tokens", map[string][]byte{"tokenizer.bin": tokFile(3, append(tokens, "extra")...)}, "",
			"holds more tokens than the model's vocabulary of 16"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "model.bin")
			if err := os.WriteFile(p, modelBytes, 0o644); err != nil {
				t.Fatal(err)
			}
			for name, b := range c.files {
				if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			m, err := Load(p)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), p) {
					t.Fatalf("Load: %v, want an error naming %s and containing %q", err, p, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			switch {
			case c.want == "" && m.Tokenizer != nil:
				t.Errorf("attached a tokenizer, want none")
			case c.want != "" && (m.Tokenizer == nil || m.Tokenizer.Tokens[0] != c.want):
				t.Errorf("tokenizer %v, want first token %q", m.Tokenizer, c.want)
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	data, err := os.ReadFile(shareddata.Path(b, shareddata.Stories260KBin))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := parse("bench", data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	m, err := Load(shareddata.Path(b, shareddata.Stories260KBin))
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	var buf bytes.Buffer
	for b.Loop() {
		buf.Reset()
		if err := encode(&buf, "bench", m); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(buf.Len()))
}

func TestRopePatch(t *testing.T) {
	m := tinyModel(tiny) // head size 4, seq_len 4: tables of 8 entries each
	plain := encodeBytes(t, m)
	ropeAt := len(plain) - 2*4*8 // byte offset of freq_cis_real
	entry := func(b []byte, k int) uint32 { return binary.LittleEndian.Uint32(b[ropeAt+4*k:]) }
	oneULP := entry(plain, 5) + 1 // entry 5 of freq_cis_real
	imagULP := entry(plain, 8+3) - 1
	cases := []struct {
		name  string
		patch any
		want  map[int]uint32 // entries that change
	}{
		{"applied", []uint32{5, oneULP, 8 + 3, imagULP}, map[int]uint32{5: oneULP, 11: imagULP}},
		{"far values ignored", []uint32{5, oneULP, 6, math.Float32bits(7)}, map[int]uint32{5: oneULP}},
		{"out of range ignored", []uint32{16, oneULP, 1 << 31, oneULP, 5, oneULP}, map[int]uint32{5: oneULP}},
		{"odd length ignored", []uint32{5, oneULP, 6}, nil},
		{"wrong type ignored", []int32{5, int32(oneULP)}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m.Metadata = map[string]any{MetaRopePatch: c.patch}
			got := encodeBytes(t, m)
			for k := 0; k < 16; k++ {
				want, ok := c.want[k]
				if !ok {
					want = entry(plain, k)
				}
				if entry(got, k) != want {
					t.Errorf("entry %d = %#x, want %#x", k, entry(got, k), want)
				}
			}
			if !bytes.Equal(got[:ropeAt], plain[:ropeAt]) {
				t.Errorf("the patch changed bytes before the RoPE tables")
			}
			// Reading the result back recovers exactly the applied entries.
			back, err := parse("mem", got)
			if err != nil {
				t.Fatal(err)
			}
			var wantPatch []uint32
			for k := 0; k < 16; k++ {
				if v, ok := c.want[k]; ok {
					wantPatch = append(wantPatch, uint32(k), v)
				}
			}
			gotPatch, _ := back.Metadata[MetaRopePatch].([]uint32)
			if fmt.Sprint(gotPatch) != fmt.Sprint(wantPatch) {
				t.Errorf("patch read back as %v, want %v", gotPatch, wantPatch)
			}
		})
	}
}

// TestSaveWithTokenizer writes stories260K and its tokenizer into a fresh
// folder (the same bytes as the originals, so Load attaches the tokenizer),
// leaves an identical tokenizer alone, and refuses to write beside a
// different one.
func TestSaveWithTokenizer(t *testing.T) {
	m, err := Load(shareddata.Path(t, shareddata.Stories260KBin))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	dir := t.TempDir()
	out := filepath.Join(dir, "copy.bin")
	if err := SaveWithTokenizer(out, m, false); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(shareddata.Path(t, shareddata.Tok512Bin))
	got, _ := os.ReadFile(filepath.Join(dir, "tok512.bin"))
	if !bytes.Equal(got, want) {
		t.Errorf("tok512.bin differs from the original (%d vs %d bytes)", len(got), len(want))
	}
	back, err := Load(out)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	if back.Tokenizer == nil || len(back.Tokenizer.Tokens) != 512 {
		t.Fatalf("the copy loads without its tokenizer")
	}
	if err := SaveWithTokenizer(filepath.Join(dir, "second.bin"), m, false); err != nil {
		t.Errorf("beside an identical tokenizer: %v", err)
	}
	other := *m
	other.Tokenizer = &model.Tokenizer{}
	*other.Tokenizer = *m.Tokenizer
	other.Tokenizer.Tokens = append([]string{"<x>"}, m.Tokenizer.Tokens[1:]...)
	third := filepath.Join(dir, "third.bin")
	if err := SaveWithTokenizer(third, &other, true); err == nil || !strings.Contains(err.Error(), "another tokenizer") {
		t.Errorf("beside a different tokenizer: %v", err)
	}
	if _, err := os.Stat(third); err == nil {
		t.Error("the model was written although its tokenizer was refused")
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "tok512.bin")); !bytes.Equal(got, want) {
		t.Error("the existing tokenizer was changed")
	}
}
