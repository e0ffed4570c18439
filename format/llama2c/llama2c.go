// Package llama2c reads and writes checkpoints in the legacy ("version 0")
// format of Andrej Karpathy's llama2.c, and its tok*.bin tokenizer files.
//
// A checkpoint is a header of seven little-endian int32 (dim, hidden_dim,
// n_layers, n_heads, n_kv_heads, vocab_size, seq_len) followed by float32
// arrays: the token embedding, the stacked per-layer weights grouped by kind,
// the final norm, two RoPE tables that llama2.c's run.c ignores, and, when
// vocab_size is negative, a separate classifier. Weights are stored as
// PyTorch [out, in] matrices with q and k rows already in RoPE pair order.
package llama2c

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"

	"github.com/shrinkml/shrink/internal/fileio"
	"github.com/shrinkml/shrink/model"
)

// RMSNormEps and RopeTheta are the values llama2.c's run.c hard-codes; the
// format has no field for either.
const (
	RMSNormEps = 1e-5
	RopeTheta  = 10000.0
)

const (
	headerBytes = 28
	// maxDim bounds each header number, as model.Config.Check does.
	maxDim = 1 << 24
	// maxFloats bounds the float count a header may describe, so that every
	// size computation stays far from int64 overflow.
	maxFloats = 1 << 58
	// magicV1 is "ak42" read as a little-endian uint32: the first word of
	// llama2.c's newer (version 1 and 2) export formats.
	magicV1 = 0x616b3432
)

// header is a checkpoint's seven int32, with the sign of vocab_size split off.
type header struct {
	dim, hidden, layers, heads, kvHeads, vocab, seqLen int
	shared                                             bool // classifier tied to the embedding
	raw                                                [7]int32
}

func (h *header) String() string {
	r := h.raw
	return fmt.Sprintf("dim=%d hidden_dim=%d n_layers=%d n_heads=%d n_kv_heads=%d vocab_size=%d seq_len=%d",
		r[0], r[1], r[2], r[3], r[4], r[5], r[6])
}

func (h *header) headSize() int { return h.dim / h.heads }
func (h *header) kvDim() int    { return h.kvHeads * h.headSize() }

// ropeFloats is the size of one RoPE table, [seq_len, head_size/2].
func (h *header) ropeFloats() int { return h.seqLen * (h.headSize() / 2) }

// readHeader decodes and validates the header; it does not look at the file size.
func readHeader(name string, data []byte) (*header, error) {
	if len(data) < headerBytes {
		return nil, fmt.Errorf("llama2c %s: file has %d bytes, too short for the %d-byte header", name, len(data), headerBytes)
	}
	h := &header{}
	for i := range h.raw {
		h.raw[i] = int32(binary.LittleEndian.Uint32(data[4*i:]))
	}
	if uint32(h.raw[0]) == magicV1 {
		return nil, fmt.Errorf("llama2c %s: starts with the magic \"ak42\" of llama2.c's version-%d export; only the legacy version-0 format is supported",
			name, h.raw[1])
	}
	vocab := int64(h.raw[5])
	h.shared = vocab > 0
	if vocab < 0 {
		vocab = -vocab
	}
	fields := []struct {
		name string
		v    int64
		dst  *int
	}{
		{"dim", int64(h.raw[0]), &h.dim},
		{"hidden_dim", int64(h.raw[1]), &h.hidden},
		{"n_layers", int64(h.raw[2]), &h.layers},
		{"n_heads", int64(h.raw[3]), &h.heads},
		{"n_kv_heads", int64(h.raw[4]), &h.kvHeads},
		{"vocab_size", vocab, &h.vocab},
		{"seq_len", int64(h.raw[6]), &h.seqLen},
	}
	for _, f := range fields {
		if f.v <= 0 {
			return nil, fmt.Errorf("llama2c %s: header (%v): %s %d is not positive", name, h, f.name, f.v)
		}
		if f.v > maxDim {
			return nil, fmt.Errorf("llama2c %s: header (%v): %s %d is too large (limit %d)", name, h, f.name, f.v, maxDim)
		}
		*f.dst = int(f.v)
	}
	if h.dim%h.heads != 0 {
		return nil, fmt.Errorf("llama2c %s: header (%v): n_heads %d does not divide dim %d", name, h, h.heads, h.dim)
	}
	if h.heads%h.kvHeads != 0 {
		return nil, fmt.Errorf("llama2c %s: header (%v): n_kv_heads %d does not divide n_heads %d", name, h, h.kvHeads, h.heads)
	}
	if h.headSize()%2 != 0 {
		return nil, fmt.Errorf("llama2c %s: header (%v): head size %d (dim/n_heads) is odd; RoPE needs pairs", name, h, h.headSize())
	}
	return h, nil
}

// floats counts the float32 values the header implies, RoPE tables and
// classifier included; ok is false when the count exceeds maxFloats.
func (h *header) floats() (n int64, ok bool) {
	var total uint64
	add := func(factors ...int) {
		p := uint64(1)
		for _, f := range factors {
			hi, lo := bits.Mul64(p, uint64(f))
			if hi != 0 || lo > maxFloats {
				ok = false
				return
			}
			p = lo
		}
		total += p
		if total > maxFloats {
			ok = false
		}
	}
	ok = true
	d, kv, L := h.dim, h.kvDim(), h.layers
	add(h.vocab, d)        // token embedding
	add(L, d)              // rms_att
	add(L, d, d)           // wq
	add(L, kv, d)          // wk
	add(L, kv, d)          // wv
	add(L, d, d)           // wo
	add(L, d)              // rms_ffn
	add(3, L, h.hidden, d) // w1, w2, w3
	add(d)                 // rms_final
	add(2, h.ropeFloats()) // freq_cis_real, freq_cis_imag
	if !h.shared {
		add(h.vocab, d) // wcls
	}
	return int64(total), ok
}

func (h *header) config() model.Config {
	return model.Config{
		Arch:             "llama",
		HiddenSize:       h.dim,
		IntermediateSize: h.hidden,
		NumLayers:        h.layers,
		NumHeads:         h.heads,
		NumKVHeads:       h.kvHeads,
		HeadDim:          h.headSize(),
		VocabSize:        h.vocab,
		ContextLength:    h.seqLen,
		RMSNormEps:       RMSNormEps,
		RopeTheta:        RopeTheta,
		RopeLayout:       model.RopePairs,
		TiedEmbeddings:   h.shared,
	}
}

// Load reads a version-0 llama2.c checkpoint. Tensors are float32 views of
// the memory-mapped file; call Close on the model to release it. A tokenizer
// beside the file (tok<vocab>.bin, else tokenizer.bin) is attached, and one
// that does not match the model's vocabulary is an error; when there is none,
// m.Tokenizer is nil. Metadata may hold MetaRopePatch.
func Load(path string) (*model.Model, error) {
	data, closer, err := fileio.Map(path)
	if err != nil {
		return nil, fmt.Errorf("llama2c %s: %w", path, err)
	}
	m, err := parse(path, data)
	if err != nil {
		closer.Close()
		return nil, err
	}
	m.KeepAlive(closer)
	if tp := findTokenizer(path, m.Config.VocabSize); tp != "" {
		tok, err := LoadTokenizer(tp, m.Config.VocabSize)
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("llama2c %s: tokenizer beside the model: %w", path, err)
		}
		m.Tokenizer = tok
	}
	return m, nil
}

// findTokenizer returns the tokenizer file beside modelPath, or "".
func findTokenizer(modelPath string, vocab int) string {
	self, err := os.Stat(modelPath)
	if err != nil {
		return ""
	}
	dir := filepath.Dir(modelPath)
	for _, name := range []string{fmt.Sprintf("tok%d.bin", vocab), "tokenizer.bin"} {
		p := filepath.Join(dir, name)
		st, err := os.Stat(p)
		if err != nil || !st.Mode().IsRegular() || os.SameFile(st, self) {
			continue
		}
		return p
	}
	return ""
}

// parse decodes a checkpoint held in data; the tensors alias data.
func parse(name string, data []byte) (*model.Model, error) {
	h, err := readHeader(name, data)
	if err != nil {
		return nil, err
	}
	n, ok := h.floats()
	if !ok {
		return nil, fmt.Errorf("llama2c %s: header (%v) describes more than %d floats (over %d bytes); the file has %d bytes",
			name, h, int64(maxFloats), int64(4*maxFloats), len(data))
	}
	if want := headerBytes + 4*n; int64(len(data)) != want {
		cls := "a shared classifier"
		if !h.shared {
			cls = "a separate classifier"
		}
		return nil, fmt.Errorf("llama2c %s: header (%v) with %s needs %d bytes, the file has %d",
			name, h, cls, want, len(data))
	}

	off := headerBytes
	next := func(floats int) []byte {
		end := off + 4*floats
		b := data[off:end:end]
		off = end
		return b
	}
	// split cuts a stacked [L, ...] array into one slice per layer.
	split := func(perLayer int) [][]byte {
		all := next(h.layers * perLayer)
		out := make([][]byte, h.layers)
		for l := range out {
			s, e := 4*l*perLayer, 4*(l+1)*perLayer
			out[l] = all[s:e:e]
		}
		return out
	}
	d, kv, ff := h.dim, h.kvDim(), h.hidden
	emb := next(h.vocab * d)
	rmsAtt := split(d)
	wq := split(d * d)
	wk := split(kv * d)
	wv := split(kv * d)
	wo := split(d * d)
	rmsFFN := split(d)
	w1 := split(ff * d)
	w2 := split(d * ff)
	w3 := split(ff * d)
	rmsFinal := next(d)
	ropeReal := next(h.ropeFloats())
	ropeImag := next(h.ropeFloats())
	var wcls []byte
	if !h.shared {
		wcls = next(h.vocab * d)
	}

	m := &model.Model{Config: h.config(), Source: name}
	add := func(name string, data []byte, shape ...int) {
		m.Tensors = append(m.Tensors, &model.Tensor{Name: name, DType: model.F32, Shape: shape, Data: data})
	}
	add(model.TokenEmbedding, emb, h.vocab, d)
	for l := 0; l < h.layers; l++ {
		add(model.LayerTensor(l, model.AttnNorm), rmsAtt[l], d)
		add(model.LayerTensor(l, model.AttnQ), wq[l], d, d)
		add(model.LayerTensor(l, model.AttnK), wk[l], kv, d)
		add(model.LayerTensor(l, model.AttnV), wv[l], kv, d)
		add(model.LayerTensor(l, model.AttnO), wo[l], d, d)
		add(model.LayerTensor(l, model.FFNNorm), rmsFFN[l], d)
		add(model.LayerTensor(l, model.FFNGate), w1[l], ff, d)
		add(model.LayerTensor(l, model.FFNUp), w3[l], ff, d)
		add(model.LayerTensor(l, model.FFNDown), w2[l], d, ff)
	}
	add(model.FinalNorm, rmsFinal, d)
	if !h.shared {
		add(model.OutputHead, wcls, h.vocab, d)
	}
	if patch := ropePatch(h.headSize(), h.seqLen, ropeReal, ropeImag); len(patch) > 0 {
		m.Metadata = map[string]any{MetaRopePatch: patch}
	}
	if err := m.Validate(); err != nil {
		// Unreachable for a header that passed readHeader; kept as a guard.
		return nil, fmt.Errorf("llama2c %s: %w", name, err)
	}
	return m, nil
}
