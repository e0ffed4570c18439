package inference

import (
	"fmt"
	"time"

	"github.com/shrinkml/shrink/inference/tokenizer"
)

// Stats times a generation: the prompt's batched prefill and the one-token
// decode steps that follow.
type Stats struct {
	PrefillTokens  int     // prompt tokens, BOS included
	PrefillSeconds float64 // time in the prefill Forward
	DecodeTokens   int     // single-token Forward calls
	DecodeSeconds  float64 // time in those calls
	Generated      int     // tokens sampled and emitted
}

// PrefillRate is prompt tokens per second.
func (s Stats) PrefillRate() float64 { return rate(s.PrefillTokens, s.PrefillSeconds) }

// DecodeRate is decoded tokens per second.
func (s Stats) DecodeRate() float64 { return rate(s.DecodeTokens, s.DecodeSeconds) }

func rate(n int, sec float64) float64 {
	if sec <= 0 {
		return 0
	}
	return float64(n) / sec
}

// Generate continues prompt (encoded with a leading BOS) by up to n tokens:
// it prefills the prompt in one batched Forward, then samples and decodes one
// token at a time, calling emit with each token's text. It stops early when
// the sampler picks BOS or EOS (llama2.c's end-of-text convention) or the
// model's context is full. Only generated text is emitted, not the prompt.
// With an empty prompt and n = 256 it produces what llama2.c's run.c prints
// for -n 256.
func Generate(l *Llama, tok *tokenizer.Tokenizer, prompt string, n int, sampler *Sampler, emit func(piece []byte)) (Stats, error) {
	var st Stats
	ids := tok.Encode(prompt, true)
	if len(ids) == 0 {
		return st, fmt.Errorf("generate: the prompt encodes to no tokens")
	}
	if len(ids) > l.cfg.ContextLength {
		return st, fmt.Errorf("generate: the prompt is %d tokens, longer than the context of %d", len(ids), l.cfg.ContextLength)
	}
	if n <= 0 {
		return st, nil
	}
	// The last sampled token is emitted but never run, hence the -1.
	s := l.NewState(len(ids) + n - 1)
	logits := make([]float32, l.vocab)
	start := time.Now()
	if err := l.Forward(s, ids, logits); err != nil {
		return st, fmt.Errorf("generate: %w", err)
	}
	st.PrefillTokens, st.PrefillSeconds = len(ids), time.Since(start).Seconds()
	prev := ids[len(ids)-1]
	one := []int{0}
	for {
		next := sampler.Sample(logits)
		if next < 0 || next == tok.BOS() || next == tok.EOS() {
			break
		}
		if emit != nil {
			emit(tok.Decode(prev, next))
		}
		st.Generated++
		if st.Generated == n || s.Pos() == s.Cap() {
			break
		}
		one[0] = next
		start = time.Now()
		if err := l.Forward(s, one, logits); err != nil {
			return st, fmt.Errorf("generate: %w", err)
		}
		st.DecodeSeconds += time.Since(start).Seconds()
		st.DecodeTokens++
		prev = next
	}
	return st, nil
}
