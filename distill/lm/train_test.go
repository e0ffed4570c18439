package lm

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/inference"
	"github.com/shrinkml/shrink/inference/tokenizer"
)

// tinyCorpus trains a tokenizer on sample text and returns it with the
// text's tokens.
func tinyCorpus(t testing.TB, sentences, vocab int) (*tokenizer.Tokenizer, []int, string) {
	t.Helper()
	text := sampleText(sentences, 1)
	tok, err := TrainTokenizer(text, vocab)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := tokenizer.New(tok)
	if err != nil {
		t.Fatal(err)
	}
	return enc, enc.Encode(text, false), text
}

var tinyConfig = Config{Dim: 32, Layers: 2, Heads: 4, KVHeads: 2, Hidden: 64, Context: 32, RopeTheta: 10000, NormEps: 1e-5}

// TestTrainLearns trains a tiny model on sample text: the held-out loss
// falls well below the uniform guess, the run is deterministic for a thread
// count, and the model runs in the inference engine.
func TestTrainLearns(t *testing.T) {
	enc, tokens, _ := tinyCorpus(t, 400, 300)
	cfg := tinyConfig
	cfg.Vocab = enc.VocabSize()
	cut := len(tokens) * 9 / 10
	trainToks, held := tokens[:cut], tokens[cut:]
	run := func(threads int) (*Model, Result) {
		m, err := New(cfg, 1)
		if err != nil {
			t.Fatal(err)
		}
		opts := DefaultOptions()
		opts.Steps, opts.Batch, opts.Threads, opts.BOS = 60, 8, threads, enc.BOS()
		var calls int
		opts.OnStep = func(s Step) {
			calls++
			if s.Step != calls || s.Steps != 60 || !(s.TokensPerSec > 0) || s.LR < 0 {
				t.Errorf("step %+v", s)
			}
		}
		res, err := Train(m, trainToks, opts)
		if err != nil {
			t.Fatal(err)
		}
		if calls != 60 || res.Tokens != 60*8*32 {
			t.Errorf("%d calls, %d tokens", calls, res.Tokens)
		}
		return m, res
	}
	before, _ := New(cfg, 1)
	e0, err := Evaluate(before, held, 0, enc.BOS(), 2)
	if err != nil {
		t.Fatal(err)
	}
	m, res := run(2)
	e1, err := Evaluate(m, held, 0, enc.BOS(), 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("held-out loss %.3f -> %.3f (perplexity %.1f -> %.1f), train loss %.3f -> %.3f, %.0f tokens/s",
		e0.Loss, e1.Loss, e0.Perplexity, e1.Perplexity, res.FirstLoss, res.LastLoss, res.TokensPerSec)
	if e0.Tokens != len(held) || math.Abs(e0.Loss-math.Log(float64(cfg.Vocab))) > 0.2 || e1.Loss > e0.Loss-1.5 {
		t.Errorf("held-out loss %.3f -> %.3f on %d tokens", e0.Loss, e1.Loss, e0.Tokens)
	}
	again, _ := run(2)
	if !slices.Equal(again.params, m.params) {
		t.Error("two runs with the same seed and threads differ")
	}

	// The trained model generates text in the inference engine.
	mm := m.Model(nil)
	eng, err := inference.NewLlama(mm, inference.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	s := eng.NewState(0)
	logits := make([]float32, cfg.Vocab)
	ids := enc.Encode("the", true)
	var out strings.Builder
	for range 20 {
		if err := eng.Forward(s, ids, logits); err != nil {
			t.Fatal(err)
		}
		next := slices.Index(logits, slices.Max(logits))
		out.Write(enc.Decode(ids[len(ids)-1], next))
		ids = []int{next}
	}
	t.Logf("greedy: the%s", out.String())
}

// TestTrainDistill distills a trained teacher into a smaller student through
// both teacher interfaces: a *Model and a logits function give the same
// weights, and the student ends closer to the teacher than one from scratch.
func TestTrainDistill(t *testing.T) {
	enc, tokens, _ := tinyCorpus(t, 300, 300)
	cfg := tinyConfig
	cfg.Vocab = enc.VocabSize()
	teacher, _ := New(cfg, 1)
	opts := DefaultOptions()
	opts.Steps, opts.Batch, opts.Threads, opts.BOS = 40, 8, 2, enc.BOS()
	if _, err := Train(teacher, tokens, opts); err != nil {
		t.Fatal(err)
	}
	small := cfg
	small.Dim, small.Hidden, small.Layers = 16, 32, 1
	a, _ := New(small, 2)
	b, _ := New(small, 2)
	opts.Teacher, opts.Alpha, opts.Temperature = teacher, 0.7, 2
	if _, err := Train(a, tokens, opts); err != nil {
		t.Fatal(err)
	}
	opts.Teacher = nil
	opts.TeacherLogits = func(in []int, logits []float32) error {
		z, err := teacher.Logits(in)
		copy(logits, z)
		return err
	}
	if _, err := Train(b, tokens, opts); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.params, b.params) {
		t.Error("Teacher and TeacherLogits give different students")
	}
	e, err := Evaluate(a, tokens[:500], 0, enc.BOS(), 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("distilled student: loss %.3f", e.Loss)

	opts.TeacherLogits = func([]int, []float32) error { return fmt.Errorf("no teacher today") }
	if _, err := Train(b, tokens, opts); err == nil || !strings.Contains(err.Error(), "no teacher today") {
		t.Errorf("a failing teacher: %v", err)
	}
}

func TestTrainErrors(t *testing.T) {
	cfg := tinyConfig
	cfg.Vocab = 10
	m, _ := New(cfg, 1)
	toks := make([]int, 100)
	for _, c := range []struct {
		mod    func(*Options)
		tokens []int
		want   string
	}{
		{func(o *Options) { o.Steps = 0 }, toks, "0 steps"},
		{func(o *Options) { o.Context = 64 }, toks, "context 64"},
		{func(o *Options) {}, toks[:20], "fewer than a window"},
		{func(o *Options) { o.BOS = 10 }, toks, "BOS 10"},
		{func(o *Options) { o.Warmup = 1 }, toks, "warm-up 1"},
		{func(o *Options) {}, append(append([]int(nil), toks...), 30), "token 30"},
	} {
		o := DefaultOptions()
		o.Steps = 1
		c.mod(&o)
		if _, err := Train(m, c.tokens, o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
	}
	if _, err := Evaluate(m, []int{3}, 0, -1, 1); err == nil {
		t.Error("Evaluate of one token without BOS: no error")
	}
	if e, err := Evaluate(m, []int{3}, 0, 1, 1); err != nil || e.Tokens != 1 {
		t.Errorf("Evaluate of one token with BOS: %+v, %v", e, err)
	}
}
