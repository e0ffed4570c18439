package inference

import (
	"math"
	"slices"
	"testing"

	"github.com/shrinkml/shrink/inference/kernels"
	"github.com/shrinkml/shrink/model"
)

// finalLogits runs the final norm and output head over the hidden states as
// forward does.
func finalLogits(l *Llama, h []float32) []float32 {
	n := len(h) / l.dim
	s := l.NewState(prefillChunk)
	out := make([]float32, n*l.vocab)
	for start := 0; start < n; start += prefillChunk {
		end := min(start+prefillChunk, n)
		for t := start; t < end; t++ {
			kernels.RMSNorm(s.xb[(t-start)*l.dim:(t-start+1)*l.dim], h[t*l.dim:(t+1)*l.dim], l.norm, l.eps)
		}
		s.mat.set(s.xb, end-start, plain)
		s.mat.add(l.head, out[start*l.vocab:end*l.vocab])
		l.runMat(&s.mat, (end-start)*l.vocab*l.dim)
	}
	return out
}

// TestCalibrationMatchesForward runs every layer of a model one at a time over
// sequences longer and shorter than a prefill chunk; the logits must equal
// Forward's bit for bit, and the observed inputs must be what each linear
// group multiplies.
func TestCalibrationMatchesForward(t *testing.T) {
	cfg := with(llamaConfig(64, 4, 2, 16, 96, 80, 3), func(c *model.Config) { c.QKVBias = true })
	m := randomModel(t, cfg, 5)
	l := newTestLlama(t, m, 2)
	seqs := [][]int{randomTokens(200, cfg.VocabSize, 1), randomTokens(7, cfg.VocabSize, 2), randomTokens(1, cfg.VocabSize, 3)}
	c, err := l.NewCalibration(seqs)
	if err != nil {
		t.Fatal(err)
	}
	if c.Tokens() != 208 {
		t.Fatalf("Tokens() = %d, want 208", c.Tokens())
	}
	rows := map[LinearGroup]int{}
	var first []float32 // layer 0's q/k/v input of sequence 0's first chunk
	for c.Layer() < cfg.NumLayers {
		li := c.Layer()
		before := slices.Clone(c.Hidden(0))
		// A pass without advance leaves the hidden states alone.
		if err := c.Run(nil, false); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(before, c.Hidden(0)) || c.Layer() != li {
			t.Fatalf("layer %d: Run without advance changed the state", li)
		}
		err := c.Run(func(in Input) {
			if in.Layer != li || len(in.X) != in.Rows*in.Cols {
				t.Fatalf("layer %d: bad input %+v", li, in)
			}
			want := map[LinearGroup]int{GroupQKV: cfg.HiddenSize, GroupO: cfg.NumHeads * cfg.HeadDim,
				GroupGateUp: cfg.HiddenSize, GroupDown: cfg.IntermediateSize}[in.Group]
			if in.Cols != want {
				t.Fatalf("layer %d group %v: %d columns, want %d", li, in.Group, in.Cols, want)
			}
			rows[in.Group] += in.Rows
			if li == 0 && in.Group == GroupQKV && first == nil {
				first = slices.Clone(in.X)
			}
		}, true)
		if err != nil {
			t.Fatal(err)
		}
	}
	for g := GroupQKV; g <= GroupDown; g++ {
		if rows[g] != cfg.NumLayers*c.Tokens() {
			t.Errorf("group %v: %d rows observed, want %d", g, rows[g], cfg.NumLayers*c.Tokens())
		}
	}
	// Layer 0's first input is the normalized embedding.
	emb, attnNorm := make([]float32, cfg.HiddenSize), make([]float32, cfg.HiddenSize)
	want := make([]float32, cfg.HiddenSize)
	attnNormT, _ := m.Tensor(model.LayerTensor(0, model.AttnNorm)).Float32()
	copy(attnNorm, attnNormT)
	l.embed.Row(emb, seqs[0][0])
	kernels.RMSNorm(want, emb, attnNorm, l.eps)
	if !slices.Equal(first[:cfg.HiddenSize], want) {
		t.Errorf("layer 0 q/k/v input is not the normalized embedding")
	}
	if err := c.Run(nil, true); err == nil {
		t.Errorf("Run past the last layer succeeded")
	}
	for i, seq := range seqs {
		wantLogits := make([]float32, len(seq)*cfg.VocabSize)
		if len(seq) == 1 {
			wantLogits = wantLogits[:cfg.VocabSize]
		}
		if err := l.Forward(l.NewState(0), seq, wantLogits); err != nil {
			t.Fatal(err)
		}
		got := finalLogits(l, c.Hidden(i))
		for j := range got {
			if math.Float32bits(got[j]) != math.Float32bits(wantLogits[j]) {
				t.Fatalf("sequence %d: logit %d is %v, Forward gives %v", i, j, got[j], wantLogits[j])
			}
		}
	}
}

// TestSetWeights replaces matrices: the same values give the same logits,
// other values change them, and bad replacements are refused.
func TestSetWeights(t *testing.T) {
	cfg := llamaConfig(32, 2, 2, 16, 48, 40, 2)
	m := randomModel(t, cfg, 9)
	l := newTestLlama(t, m, 1)
	tokens := randomTokens(9, cfg.VocabSize, 4)
	logits := func() []float32 {
		out := make([]float32, cfg.VocabSize)
		if err := l.Forward(l.NewState(0), tokens, out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	base := logits()
	name := model.LayerTensor(1, model.FFNDown)
	orig := m.Tensor(name)
	data, _ := orig.Float32()
	same := model.NewF32(name, orig.Shape, slices.Clone(data))
	if err := l.SetWeights(name, same); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(logits(), base) {
		t.Errorf("the same weights gave other logits")
	}
	zero := model.NewF32(name, orig.Shape, make([]float32, len(data)))
	if err := l.SetWeights(name, zero); err != nil {
		t.Fatal(err)
	}
	if slices.Equal(logits(), base) {
		t.Errorf("zeroing %s left the logits unchanged", name)
	}
	for _, tc := range []struct {
		name string
		t    *model.Tensor
	}{
		{model.TokenEmbedding, m.Tensor(model.TokenEmbedding)},
		{"blk.9.attn_q.weight", zero},
		{model.LayerTensor(0, model.AttnQ), zero}, // wrong shape
	} {
		if err := l.SetWeights(tc.name, tc.t); err == nil {
			t.Errorf("SetWeights(%q) succeeded", tc.name)
		}
	}
}

func TestCalibrationErrors(t *testing.T) {
	cfg := llamaConfig(32, 2, 2, 16, 48, 40, 1)
	l := newTestLlama(t, randomModel(t, cfg, 1), 1)
	for _, seqs := range [][][]int{nil, {{}}, {{1, 40}}, {{-1}}, {make([]int, 513)}} {
		if _, err := l.NewCalibration(seqs); err == nil {
			t.Errorf("NewCalibration(%v...) succeeded", len(seqs))
		}
	}
}
