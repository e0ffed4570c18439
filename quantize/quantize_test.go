package quantize

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/model"
)

// synth is a small llama with 32-multiple widths, untied unless tied is set.
func synth(t testing.TB, ffn int, tied bool) *model.Model {
	t.Helper()
	cfg := model.Config{Arch: "llama", HiddenSize: 64, IntermediateSize: ffn, NumLayers: 2, NumHeads: 4,
		NumKVHeads: 2, HeadDim: 16, VocabSize: 96, ContextLength: 64, RMSNormEps: 1e-5, RopeTheta: 10000, TiedEmbeddings: tied}
	m, err := model.Synthesize(cfg, 7)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// dtypes maps each tensor name to its dtype.
func dtypes(m *model.Model) map[string]model.DType {
	out := map[string]model.DType{}
	for _, t := range m.Tensors {
		out[t.Name] = t.DType
	}
	return out
}

func rules(t *testing.T, specs ...string) []Rule {
	var rs []Rule
	for _, s := range specs {
		r, err := ParseRule(s)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	return rs
}

func TestSelection(t *testing.T) {
	emb, head := model.TokenEmbedding, model.OutputHead
	down0, down1 := model.LayerTensor(0, model.FFNDown), model.LayerTensor(1, model.FFNDown)
	q0, norm0 := model.LayerTensor(0, model.AttnQ), model.LayerTensor(0, model.AttnNorm)
	for _, c := range []struct {
		name  string
		tied  bool
		opts  Options
		want  map[string]model.DType // the tensors to check
		other model.DType            // every other matrix; Invalid means the scheme
		warn  string                 // a substring of the warnings, if any
	}{
		{name: "default 4-bit: head Q8_0, embedding the scheme", opts: Options{Scheme: Q4_0},
			want: map[string]model.DType{emb: model.Q4_0, head: model.Q8_0, norm0: model.F32}},
		{name: "default Q8_0", opts: Options{Scheme: Q8_0},
			want: map[string]model.DType{emb: model.Q8_0, head: model.Q8_0}},
		{name: "tied embedding is the head", tied: true, opts: Options{Scheme: Q4_1},
			want: map[string]model.DType{emb: model.Q8_0}},
		{name: "pure", opts: Options{Scheme: Q4_1, Pure: true},
			want: map[string]model.DType{emb: model.Q4_1, head: model.Q4_1, norm0: model.F32}},
		{name: "pure tied", tied: true, opts: Options{Scheme: Q4_0, Pure: true},
			want: map[string]model.DType{emb: model.Q4_0}},
		{name: "first rule wins", opts: Options{Scheme: Q4_0, Rules: rules(t, `layers\.0\.(mlp\.down|self_attn\.q)=f16`, `down_proj=q8_0`, `.*=q4_1`)},
			want: map[string]model.DType{down0: model.F16, q0: model.F16, down1: model.Q8_0}, other: model.Q4_1},
		{name: "rules win over pure", opts: Options{Scheme: Q4_0, Pure: true, Rules: rules(t, `lm_head=q8_0`)},
			want: map[string]model.DType{head: model.Q8_0, emb: model.Q4_0}},
		{name: "keep wins over rules", opts: Options{Scheme: Q4_0, Rules: rules(t, `q_proj=q8_0`), Keep: []*regexp.Regexp{regexp.MustCompile(`layers\.0\.self_attn\.q`)}},
			want: map[string]model.DType{q0: model.F32, model.LayerTensor(1, model.AttnQ): model.Q8_0, head: model.Q8_0}},
		{name: "norms stay whatever matches", opts: Options{Scheme: Q4_0, Rules: rules(t, `norm=q8_0`)},
			want: map[string]model.DType{norm0: model.F32, model.FinalNorm: model.F32, head: model.Q8_0}, warn: `rule "norm=q8_0" matched no matrix`},
		{name: "unused keep", opts: Options{Scheme: Q8_0, Keep: []*regexp.Regexp{regexp.MustCompile(`nothing`)}},
			want: map[string]model.DType{}, warn: `keep pattern "nothing" matched no matrix`},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := synth(t, 96, c.tied)
			before := dtypes(m)
			q, rep, err := Quantize(m, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			got := dtypes(q)
			for name, d := range got {
				want, ok := c.want[name]
				if !ok {
					want = c.opts.Scheme.DType()
					if c.other != model.Invalid {
						want = c.other
					}
					if before[name] == model.F32 && len(m.Tensor(name).Shape) == 1 {
						want = model.F32
					}
				}
				if d != want {
					t.Errorf("%s is %s, want %s", name, d, want)
				}
			}
			if !reflect.DeepEqual(before, dtypes(m)) {
				t.Error("the input model changed")
			}
			warnings := strings.Join(rep.Warnings, "\n")
			if (c.warn == "") != (warnings == "") || !strings.Contains(warnings, c.warn) {
				t.Errorf("warnings %q, want %q", warnings, c.warn)
			}
			if err := q.Validate(); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestFallback uses stories260K's shape: FFN width 172, so down_proj rows are
// no whole number of blocks and must become F16, with a warning each.
func TestFallback(t *testing.T) {
	m, err := model.Synthesize(model.Presets["stories260k"], 1)
	if err != nil {
		t.Fatal(err)
	}
	q, rep, err := Quantize(m, Options{Scheme: Q4_0})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Fallback != 5 || len(rep.Warnings) != 5 {
		t.Fatalf("%d fallbacks, warnings %q", rep.Fallback, rep.Warnings)
	}
	for l := 0; l < 5; l++ {
		name := model.LayerTensor(l, model.FFNDown)
		if d := q.Tensor(name).DType; d != model.F16 {
			t.Errorf("%s is %s, want F16", name, d)
		}
		if !strings.Contains(rep.Warnings[l], name) || !strings.Contains(rep.Warnings[l], "172") {
			t.Errorf("warning %q does not name %s and its row length", rep.Warnings[l], name)
		}
	}
	for _, tr := range rep.Tensors {
		switch {
		case tr.Action == Fallback && (tr.To != model.F16 || tr.RelRMSE > 1e-3 || tr.RelRMSE == 0):
			t.Errorf("%+v: an F16 fallback has a small, non-zero error", tr)
		case tr.Action == Quantized && tr.Name == model.TokenEmbedding && tr.To != model.Q8_0:
			t.Errorf("the tied embedding is %s, want Q8_0", tr.To)
		}
	}
	if rep.Quantized != 31 || rep.Kept != 11 || rep.Quantized+rep.Kept+rep.Fallback != len(m.Tensors) {
		t.Errorf("quantized %d, kept %d, fallback %d", rep.Quantized, rep.Kept, rep.Fallback)
	}
	js, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js, &back); err != nil || !reflect.DeepEqual(back, rep) {
		t.Errorf("the report does not survive JSON: %v\n%s", err, js)
	}
	if rep.BytesAfter >= rep.BytesBefore/3 || rep.BitsPerWeight >= 32/3.0 || rep.BitsPerWeightBefore != 32 {
		t.Errorf("%d -> %d bytes, %.2f -> %.2f bits per weight", rep.BytesBefore, rep.BytesAfter, rep.BitsPerWeightBefore, rep.BitsPerWeight)
	}
}

// TestThreads checks that the bytes and the report do not depend on the
// number of threads, with matrices cut into many jobs of uneven size.
func TestThreads(t *testing.T) {
	m := synth(t, 96, false)
	big := make([]float32, 700*320)
	for i := range big {
		big[i] = float32(math.Sin(float64(i)*0.37)) * float32(1+i%13)
	}
	m.Tensors = append(m.Tensors, model.NewF32("extra.weight", []int{700, 320}, big))
	var first *model.Model
	var firstRep Report
	for _, threads := range []int{1, 2, 3, 8, 33} {
		for _, sc := range []Scheme{Q8_0, Q4_0, Q4_1} {
			var calls int
			var last int64
			q, rep, err := Quantize(m, Options{Scheme: sc, Threads: threads, Progress: func(done, total int64) {
				if done < last || done > total {
					t.Errorf("progress %d of %d after %d", done, total, last)
				}
				last = done
				calls++
			}})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Threads != threads || last != m.Parameters()-int64(64*5) || calls < 4 {
				t.Errorf("%d threads: report says %d, progress ended at %d after %d calls", threads, rep.Threads, last, calls)
			}
			if sc != Q4_1 {
				continue
			}
			rep.Seconds, rep.Threads = 0, 0
			if first == nil {
				first, firstRep = q, rep
				continue
			}
			for i, tt := range q.Tensors {
				if !bytes.Equal(tt.Data, first.Tensors[i].Data) {
					t.Errorf("%d threads: %s differs from 1 thread", threads, tt.Name)
				}
			}
			if !reflect.DeepEqual(rep, firstRep) {
				t.Errorf("%d threads: report differs:\n%+v\n%+v", threads, rep, firstRep)
			}
		}
	}
}

// TestCopiedHead covers a GGUF whose output head is stored as a copy of the
// embedding: the file has two matrices, so the result has two, quantized
// separately, and is no longer tied.
func TestCopiedHead(t *testing.T) {
	m := synth(t, 96, true)
	m.Metadata[outputCopyKey] = true
	q, rep, err := Quantize(m, Options{Scheme: Q4_0})
	if err != nil {
		t.Fatal(err)
	}
	if q.Config.TiedEmbeddings || q.Metadata[outputCopyKey] != nil || m.Metadata[outputCopyKey] != true || !m.Config.TiedEmbeddings {
		t.Error("the result should be untied, the input unchanged")
	}
	if e, h := q.Tensor(model.TokenEmbedding), q.Tensor(model.OutputHead); e.DType != model.Q4_0 || h == nil || h.DType != model.Q8_0 {
		t.Errorf("embedding %v, head %v", e.DType, h)
	}
	if len(rep.Tensors) != len(m.Tensors)+1 || m.Tensor(model.OutputHead) != nil {
		t.Errorf("%d tensors reported for %d", len(rep.Tensors), len(m.Tensors))
	}
	if err := q.Validate(); err != nil {
		t.Error(err)
	}
}

func TestQuantizeErrors(t *testing.T) {
	m := synth(t, 96, false)
	nan := m.Tensor(model.LayerTensor(1, model.FFNUp))
	vals, _ := nan.Float32()
	bad := append([]float32(nil), vals...)
	bad[3*64+10] = float32(math.Inf(-1))
	withNaN := *m
	withNaN.Tensors = append([]*model.Tensor(nil), m.Tensors...)
	for i, tt := range withNaN.Tensors {
		if tt == nan {
			withNaN.Tensors[i] = model.NewF32(nan.Name, nan.Shape, bad)
		}
	}
	for _, c := range []struct {
		name string
		m    *model.Model
		opts Options
		want string
		is   error
	}{
		{"non-finite weight", &withNaN, Options{Scheme: Q8_0}, `tensor "model.layers.1.mlp.up_proj.weight": row 3, column 10: -Inf`, ErrNotFinite},
		{"non-finite weight in a conversion", &withNaN, Options{Scheme: Q8_0, Rules: rules(t, "up_proj=f16")}, `row 3, column 10`, ErrNotFinite},
		{"no scheme", m, Options{}, "want q8_0, q4_0, q4_1, int8 or int4", nil},
		{"float scheme", m, Options{Scheme: F16}, "want q8_0, q4_0, q4_1, int8 or int4", nil},
		{"bad group", m, Options{Scheme: Int4, Group: 48}, "group 48: want 32, 64 or 128", nil},
		{"unknown method", m, Options{Scheme: Q4_0, Method: "hqq"}, `unknown method "hqq"`, nil},
		{"gptq without calibration", m, Options{Scheme: Q4_0, Method: GPTQ}, "gptq needs calibration sequences", nil},
		{"negative threads", m, Options{Scheme: Q4_0, Threads: -1}, "threads -1", nil},
		{"rule without a pattern", m, Options{Scheme: Q4_0, Rules: []Rule{{Scheme: Q8_0}}}, "rule 1 has no pattern", nil},
		{"rule with an unknown scheme", m, Options{Scheme: Q4_0, Rules: []Rule{{regexp.MustCompile("x"), "q2_k"}}}, `unknown scheme "q2_k"`, nil},
		{"nil keep", m, Options{Scheme: Q4_0, Keep: []*regexp.Regexp{nil}}, "keep pattern is nil", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := Quantize(c.m, c.opts)
			if err == nil || !strings.Contains(err.Error(), c.want) || (c.is != nil && !errors.Is(err, c.is)) {
				t.Errorf("got %v, want %q", err, c.want)
			}
		})
	}
	for _, s := range []string{"q4_0", "x=int3", "x=", "(=q4_0"} {
		if _, err := ParseRule(s); err == nil {
			t.Errorf("ParseRule(%q) accepted it", s)
		}
	}
	if _, err := ParseScheme("int2"); err == nil {
		t.Error("ParseScheme accepted int2")
	}
	if _, err := ParseMethod("hqq"); err == nil {
		t.Error("ParseMethod accepted hqq")
	}
	if r, err := ParseRule(`a=b=Q8_0`); err != nil || r.Pattern.String() != "a=b" || r.Scheme != Q8_0 {
		t.Errorf("ParseRule: %v %v", r, err)
	}
}

// TestRequantize keeps matrices that are already quantized, with a warning.
func TestRequantize(t *testing.T) {
	q, _, err := Quantize(synth(t, 96, false), Options{Scheme: Q4_0})
	if err != nil {
		t.Fatal(err)
	}
	qq, rep, err := Quantize(q, Options{Scheme: Q8_0})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(dtypes(q), dtypes(qq)) || rep.Quantized != 0 || len(rep.Warnings) != 2 {
		t.Errorf("warnings %q", rep.Warnings)
	}
}
