package lm

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// interrupted is what an OnStep panics with to stop a run as a crash would.
type interrupted struct{}

// trainUntil runs Train and stops it, by a panic from OnStep, after step
// stop (from 1; 0 runs to the end). It reports whether the run was stopped.
func trainUntil(t *testing.T, m *Model, tokens []int, opts Options, stop int) (res Result, stopped bool) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(interrupted); !ok {
				panic(r)
			}
			stopped = true
		}
	}()
	opts.OnStep = func(s Step) {
		if s.Step == stop {
			panic(interrupted{})
		}
	}
	res, err := Train(m, tokens, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res, false
}

// TestResumeIsExact stops runs, resumes each from its last checkpoint in a
// fresh model, and wants the uninterrupted run's weights bit for bit.
func TestResumeIsExact(t *testing.T) {
	enc, tokens, _ := tinyCorpus(t, 120, 300)
	cfg := Config{Dim: 16, Layers: 2, Heads: 2, KVHeads: 1, Hidden: 24, Vocab: enc.VocabSize(), Context: 16, RopeTheta: 10000, NormEps: 1e-5}
	teacher, _ := New(cfg, 7)
	for _, c := range []struct {
		name        string
		threads     int
		bos         int
		teacher     *Model
		every, stop int
	}{
		{"one thread", 1, -1, nil, 4, 7},
		{"bos 2 threads", 2, enc.BOS(), nil, 3, 10},
		{"distill 3 threads", 3, enc.BOS(), teacher, 5, 6},
	} {
		t.Run(c.name, func(t *testing.T) {
			opts := DefaultOptions()
			opts.Steps, opts.Batch, opts.Threads, opts.BOS, opts.Teacher = 14, 5, c.threads, c.bos, c.teacher
			want, _ := New(cfg, 1)
			wantRes, _ := trainUntil(t, want, tokens, opts, 0)

			opts.Checkpoint, opts.CheckpointEvery = filepath.Join(t.TempDir(), "lm.ckpt"), c.every
			first, _ := New(cfg, 1)
			if _, stopped := trainUntil(t, first, tokens, opts, c.stop); !stopped {
				t.Fatal("the run was not interrupted")
			}
			opts.Resume = opts.Checkpoint
			got, _ := New(cfg, 1)
			res, _ := trainUntil(t, got, tokens, opts, 0)
			if !slices.Equal(got.params, want.params) {
				t.Fatal("the resumed run's weights differ from the uninterrupted run's")
			}
			if res.FirstLoss != wantRes.FirstLoss || res.LastLoss != wantRes.LastLoss || res.Tokens != wantRes.Tokens {
				t.Errorf("resumed result %+v, uninterrupted %+v", res, wantRes)
			}
			if st, err := os.Stat(opts.Checkpoint); err == nil {
				t.Logf("checkpoint of %d parameters: %d bytes", got.Params(), st.Size())
			}
		})
	}
}

// TestResumeRefusesOtherRuns changes one setting at a time and wants an
// error naming the file and the setting.
func TestResumeRefusesOtherRuns(t *testing.T) {
	cfg := Config{Dim: 8, Layers: 1, Heads: 2, KVHeads: 1, Hidden: 12, Vocab: 20, Context: 8, RopeTheta: 100, NormEps: 1e-5}
	toks := make([]int, 200)
	for i := range toks {
		toks[i] = (i * 7) % 20
	}
	path := filepath.Join(t.TempDir(), "c.ckpt")
	base := DefaultOptions()
	base.Steps, base.Batch, base.Threads, base.Checkpoint = 3, 4, 2, path
	m, _ := New(cfg, 1)
	if _, err := Train(m, toks, base); err != nil {
		t.Fatal(err)
	}
	wider := cfg
	wider.Hidden = 16
	teacher, _ := New(cfg, 2)
	for _, c := range []struct {
		name   string
		cfg    Config
		tokens []int
		edit   func(o *Options)
		msg    string
	}{
		{"batch", cfg, toks, func(o *Options) { o.Batch = 2 }, "batch is 4 there but 2"},
		{"seed", cfg, toks, func(o *Options) { o.Seed = 5 }, "seed is 1 there but 5"},
		{"steps", cfg, toks, func(o *Options) { o.Steps = 4 }, "steps is 3 there but 4"},
		{"context", cfg, toks, func(o *Options) { o.Context = 4 }, "context is 8 there but 4"},
		{"config", wider, toks, func(o *Options) {}, "config is"},
		{"tokens", cfg, toks[1:], func(o *Options) {}, "tokens is 200 values"},
		{"teacher", cfg, toks, func(o *Options) { o.Teacher = teacher }, "teacher is none there"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, _ := New(c.cfg, 1)
			o := base
			o.Checkpoint, o.Resume = "", path
			c.edit(&o)
			_, err := Train(m, c.tokens, o)
			if err == nil || !strings.Contains(err.Error(), c.msg) || !strings.Contains(err.Error(), "c.ckpt") {
				t.Errorf("%v; want an error naming the file and %q", err, c.msg)
			}
		})
	}
	// A corrupt file is an error, not a panic, and leaves the model alone.
	b, _ := os.ReadFile(path)
	b[len(b)/2] ^= 0x40
	os.WriteFile(path, b, 0o644)
	o := base
	o.Checkpoint, o.Resume = "", path
	fresh, _ := New(cfg, 1)
	m2 := fresh.Clone()
	if _, err := Train(m2, toks, o); err == nil || !strings.Contains(err.Error(), "corrupt") || !slices.Equal(m2.params, fresh.params) {
		t.Errorf("resuming from a corrupt checkpoint: %v", err)
	}
}
