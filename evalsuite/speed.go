// Package evalsuite measures models with the bundled inference engine: how
// fast they run and how well they do.
package evalsuite

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/shrinkml/shrink/inference"
	"github.com/shrinkml/shrink/inference/kernels"
	"github.com/shrinkml/shrink/model"
)

// SpeedOptions sets up a speed measurement.
type SpeedOptions struct {
	Threads      int    // threads per operation; 0 means every core
	PromptTokens int    // tokens in the batched prefill; 0 means 128
	GenTokens    int    // tokens decoded one at a time after it; 0 means 64
	Repeats      int    // timed repetitions, after one untimed warm-up; 0 means 5
	Seed         uint64 // seeds the token ids, which do not change the speed
	// KVCache is the engine's key/value cache type (inference.KVF32 by default).
	KVCache inference.KVCache
	// OnRepeat, when set, is called after each repetition (warm-up included).
	OnRepeat func()
}

func (o SpeedOptions) withDefaults() SpeedOptions {
	if o.PromptTokens <= 0 {
		o.PromptTokens = 128
	}
	if o.GenTokens <= 0 {
		o.GenTokens = 64
	}
	if o.Repeats <= 0 {
		o.Repeats = 5
	}
	return o
}

// Speed is what MeasureSpeed found. Rates are medians over the repetitions.
type Speed struct {
	Threads      int    `json:"threads"`
	PromptTokens int    `json:"prompt_tokens"`
	GenTokens    int    `json:"gen_tokens"`
	Repeats      int    `json:"repeats"`
	Kernels      string `json:"kernels"`
	KVCache      string `json:"kv_cache"`

	PrefillTokensPerS float64 `json:"prefill_tokens_per_s"`
	DecodeTokensPerS  float64 `json:"decode_tokens_per_s"`
	// DecodeLatencyP50Ms and DecodeLatencyP95Ms are percentiles of the time
	// one decoded token takes, over every token of the timed runs.
	DecodeLatencyP50Ms float64 `json:"decode_latency_p50_ms"`
	DecodeLatencyP95Ms float64 `json:"decode_latency_p95_ms"`

	// BytesPerToken is the weight bytes one decoded token reads.
	BytesPerToken int64 `json:"bytes_per_token"`
	// KVBytesPerToken is what the attention of a timed decoded token reads
	// from the KV cache, on average over the timed positions; the bandwidth
	// fraction leaves it out.
	KVBytesPerToken int64 `json:"kv_bytes_per_token"`
	// BandwidthBytesPerS is the streaming-read bandwidth of Threads threads
	// over a buffer of BytesPerToken bytes, measured in the same run.
	BandwidthBytesPerS float64 `json:"bandwidth_bytes_per_s"`
	// BandwidthFraction is the decode weight traffic over that bandwidth: 1
	// means decode is as fast as reading the weights once per token can be.
	BandwidthFraction float64 `json:"bandwidth_fraction"`

	// PrefillFLOPsPerS counts the prefill's matrix and attention arithmetic.
	PrefillFLOPsPerS float64 `json:"prefill_flops_per_s"`
	// PeakFLOPSPerCore is one core's float32 FMA peak, measured in the same
	// run; 0 with the pure-Go kernels.
	PeakFLOPSPerCore float64 `json:"peak_flops_per_core"`
	// PrefillPeakFraction is PrefillFLOPsPerS over Threads cores' peak.
	PrefillPeakFraction float64 `json:"prefill_peak_fraction"`
}

// MeasureSpeed times batched prefill and one-token decode of the llama-family
// model m, and measures the machine bounds they are judged against.
func MeasureSpeed(m *model.Model, o SpeedOptions) (Speed, error) {
	o = o.withDefaults()
	d, err := NewDecodeTimer(m, o)
	if err != nil {
		return Speed{}, err
	}
	defer d.Close()
	for rep := 0; rep <= o.Repeats; rep++ {
		if err := d.Run(rep > 0); err != nil { // the first pass warms caches and page tables
			return Speed{}, err
		}
		if o.OnRepeat != nil {
			o.OnRepeat()
		}
	}
	c := m.Config
	sp := Speed{
		Threads: d.l.Threads(), PromptTokens: o.PromptTokens, GenTokens: o.GenTokens, Repeats: o.Repeats,
		Kernels:           kernels.Features(),
		KVCache:           d.l.KVCache().String(),
		PrefillTokensPerS: d.PrefillTokensPerS(),
		DecodeTokensPerS:  d.DecodeTokensPerS(),
		BytesPerToken:     d.l.WeightBytes(),
		// Generated token i (from 0) sits at position PromptTokens+i and
		// attends to PromptTokens+i+1 positions.
		KVBytesPerToken: d.l.KVBytesPerPosition() * int64(2*o.PromptTokens+o.GenTokens+1) / 2,
	}
	sp.DecodeLatencyP50Ms, sp.DecodeLatencyP95Ms = d.LatencyMs(0.50), d.LatencyMs(0.95)
	sp.BandwidthBytesPerS = StreamBandwidth(sp.Threads, sp.BytesPerToken, 5)
	if sp.BandwidthBytesPerS > 0 {
		sp.BandwidthFraction = sp.DecodeTokensPerS * float64(sp.BytesPerToken) / sp.BandwidthBytesPerS
	}
	sp.PrefillFLOPsPerS = sp.PrefillTokensPerS * PrefillFLOPs(c, o.PromptTokens) / float64(o.PromptTokens)
	sp.PeakFLOPSPerCore = kernels.PeakFLOPS()
	if sp.PeakFLOPSPerCore > 0 {
		sp.PrefillPeakFraction = sp.PrefillFLOPsPerS / (float64(sp.Threads) * sp.PeakFLOPSPerCore)
	}
	return sp, nil
}

// A DecodeTimer times a llama-family model one run at a time: a batched
// prefill of a random prompt, then one-token decode of random tokens. Runs
// of several models can so be interleaved, and a change in the machine's
// speed (other work, clocks) then falls on all of them alike.
type DecodeTimer struct {
	l               *inference.Llama
	s               *inference.State
	prompt, gen     []int
	logits          []float32
	prefill, decode []float64 // tokens/s of each timed run
	latency         []float64 // seconds of each timed decoded token
	decodeSeconds   float64   // of the timed runs
}

// NewDecodeTimer prepares runs of m with o's threads, prompt and generated
// token counts and seed (o.Repeats and o.OnRepeat are not used). Close it.
func NewDecodeTimer(m *model.Model, o SpeedOptions) (*DecodeTimer, error) {
	o = o.withDefaults()
	c := m.Config
	if c.Arch != "llama" {
		return nil, fmt.Errorf("speed: %s is a %q model; speed is measured on llama-family models", m.Source, c.Arch)
	}
	if o.PromptTokens+o.GenTokens > c.ContextLength {
		return nil, fmt.Errorf("speed: %d prompt + %d generated tokens exceed the context of %d",
			o.PromptTokens, o.GenTokens, c.ContextLength)
	}
	l, err := inference.NewLlama(m, inference.Options{Threads: o.Threads, KVCache: o.KVCache})
	if err != nil {
		return nil, err
	}
	r := rand.New(rand.NewPCG(o.Seed, 0))
	d := &DecodeTimer{l: l, s: l.NewState(o.PromptTokens + o.GenTokens), logits: make([]float32, c.VocabSize),
		prompt: make([]int, o.PromptTokens), gen: make([]int, o.GenTokens)}
	for i := range d.prompt {
		d.prompt[i] = r.IntN(c.VocabSize)
	}
	for i := range d.gen {
		d.gen[i] = r.IntN(c.VocabSize)
	}
	return d, nil
}

// Run prefills the prompt and decodes the generated tokens once; a timed
// run counts in the rates and latencies, an untimed one (a warm-up) not.
func (d *DecodeTimer) Run(timed bool) error {
	d.s.Reset()
	start := time.Now()
	if err := d.l.Forward(d.s, d.prompt, d.logits); err != nil {
		return err
	}
	mid := time.Now()
	prev := mid
	for _, t := range d.gen {
		if err := d.l.Forward(d.s, []int{t}, d.logits); err != nil {
			return err
		}
		if timed {
			now := time.Now()
			d.latency = append(d.latency, now.Sub(prev).Seconds())
			prev = now
		}
	}
	if timed {
		sec := time.Since(mid).Seconds()
		d.decodeSeconds += sec
		d.prefill = append(d.prefill, float64(len(d.prompt))/mid.Sub(start).Seconds())
		d.decode = append(d.decode, float64(len(d.gen))/sec)
	}
	return nil
}

// Runs is the number of timed runs so far, and Seconds the time their
// decoding took.
func (d *DecodeTimer) Runs() int        { return len(d.decode) }
func (d *DecodeTimer) Seconds() float64 { return d.decodeSeconds }

// PrefillTokensPerS and DecodeTokensPerS are the medians over the timed runs.
func (d *DecodeTimer) PrefillTokensPerS() float64 { return median(d.prefill) }
func (d *DecodeTimer) DecodeTokensPerS() float64  { return median(d.decode) }

// LatencyMs is the f-th percentile (0 <= f <= 1) of the time one decoded
// token took, over every token of the timed runs, in milliseconds.
func (d *DecodeTimer) LatencyMs(f float64) float64 {
	s := slices.Clone(d.latency)
	slices.Sort(s)
	return 1e3 * percentile(s, f)
}

// Close releases the engine.
func (d *DecodeTimer) Close() { d.l.Close() }

// PrefillFLOPs is the arithmetic of a batched prefill of n tokens from an
// empty cache, counting a multiply-add as two: the q, k, v, o and FFN matrix
// products of every token, the scores and weighted values of causal
// attention, and the output head of the last token only.
func PrefillFLOPs(c model.Config, n int) float64 {
	qDim, kvDim := c.NumHeads*c.HeadDim, c.NumKVHeads*c.HeadDim
	perToken := float64(c.HiddenSize) * float64(2*qDim+2*kvDim+3*c.IntermediateSize)
	// Token t attends to t+1 positions: 2 flops per element for q·k and for
	// the weighted sum of values, over every query head.
	attn := 4 * float64(qDim) * float64(n) * float64(n+1) / 2
	return float64(c.NumLayers)*(2*perToken*float64(n)+attn) + 2*float64(c.VocabSize)*float64(c.HiddenSize)
}

// StreamBandwidth measures how fast threads goroutines together read a buffer
// of the given size once, in bytes/s: the median of repeats runs after a
// warm-up. Decode reads every weight once per token, so this bounds it.
func StreamBandwidth(threads int, bytes int64, repeats int) float64 {
	n := max(bytes/4, 1<<16)
	buf := make([]float32, n)
	for i := range buf {
		buf[i] = 1
	}
	var rates []float64
	for rep := 0; rep <= repeats; rep++ {
		var wg sync.WaitGroup
		start := time.Now()
		for t := range threads {
			part := buf[len(buf)*t/threads : len(buf)*(t+1)/threads]
			wg.Add(1)
			go func() { defer wg.Done(); kernels.StreamRead(part) }()
		}
		wg.Wait()
		if rep > 0 {
			rates = append(rates, float64(4*n)/time.Since(start).Seconds())
		}
	}
	return median(rates)
}

// median returns the middle value of xs (the mean of the two middle ones for
// an even count), or 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
