package inference

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// SamplerOptions chooses how a Sampler picks tokens.
type SamplerOptions struct {
	// Temperature divides the logits before the softmax; 0 picks the most
	// likely token (greedy argmax).
	Temperature float64
	// TopK keeps only the K most likely tokens; 0 keeps all.
	TopK int
	// TopP keeps the smallest set of most likely tokens whose probabilities
	// add up to more than TopP (nucleus sampling); 0 or 1 keeps all.
	TopP float64
	// Seed seeds the random generator; equal seeds give equal samples.
	Seed uint64
}

// Sampler picks the next token from a vector of logits. It is deterministic
// for a given seed and not safe for concurrent use.
type Sampler struct {
	opts SamplerOptions
	rng  *rand.Rand
	cand []candidate
}

type candidate struct {
	id    int
	logit float32
	p     float64
}

// NewSampler returns a sampler with the given options.
func NewSampler(o SamplerOptions) (*Sampler, error) {
	if !(o.Temperature >= 0) || math.IsInf(o.Temperature, 0) {
		return nil, fmt.Errorf("sampler: temperature %g must be a finite number >= 0", o.Temperature)
	}
	if o.TopK < 0 {
		return nil, fmt.Errorf("sampler: top-k %d must be >= 0", o.TopK)
	}
	if !(o.TopP >= 0 && o.TopP <= 1) {
		return nil, fmt.Errorf("sampler: top-p %g must be in [0, 1]", o.TopP)
	}
	// The second PCG word is a fixed constant, so the seed alone decides the stream.
	return &Sampler{opts: o, rng: rand.New(rand.NewPCG(o.Seed, 0x9e3779b97f4a7c15))}, nil
}

// Greedy returns a sampler that always picks the most likely token.
func Greedy() *Sampler {
	s, _ := NewSampler(SamplerOptions{})
	return s
}

// Sample returns the index of the chosen token, or -1 when logits is empty.
// NaN logits are never chosen unless every logit is NaN.
func (s *Sampler) Sample(logits []float32) int {
	if len(logits) == 0 {
		return -1
	}
	if s.opts.Temperature == 0 || s.opts.TopK == 1 {
		return argmax(logits)
	}
	cand := s.cand[:0]
	if k := s.opts.TopK; k > 0 && k < len(logits) {
		cand = topK(cand, logits, k)
	} else {
		for i, v := range logits {
			if v == v { // not NaN
				cand = append(cand, candidate{id: i, logit: v})
			}
		}
	}
	s.cand = cand
	if len(cand) == 0 {
		return argmax(logits)
	}
	// Softmax at the temperature, in float64.
	m := cand[0].logit
	for _, c := range cand {
		m = max(m, c.logit)
	}
	if math.IsInf(float64(m), -1) {
		return argmax(logits)
	}
	if math.IsInf(float64(m), 1) {
		// Infinite logits share all the probability.
		for i := range cand {
			cand[i].p = 0
			if math.IsInf(float64(cand[i].logit), 1) {
				cand[i].p = 1
			}
		}
	} else {
		for i := range cand {
			cand[i].p = math.Exp((float64(cand[i].logit) - float64(m)) / s.opts.Temperature)
		}
	}
	var sum float64
	for _, c := range cand {
		sum += c.p
	}
	if p := s.opts.TopP; p > 0 && p < 1 {
		// A token other than the most likely one (whose weight is exactly 1)
		// is in the nucleus only if its probability is at least (1-p)/(n-1),
		// so drop the rest before sorting, as llama2.c does.
		cut := 0.0
		if len(cand) > 1 {
			cut = min((1-p)/float64(len(cand)-1)*sum, 1)
		}
		kept := cand[:0]
		for _, c := range cand {
			if c.p >= cut {
				kept = append(kept, c)
			}
		}
		cand = kept
		sortCandidates(cand)
		var cum float64
		for i, c := range cand {
			cum += c.p
			if cum > p*sum {
				cand = cand[:i+1]
				break
			}
		}
		sum = 0
		for _, c := range cand {
			sum += c.p
		}
	}
	r := s.rng.Float64() * sum
	var cdf float64
	for _, c := range cand {
		cdf += c.p
		if r < cdf {
			return c.id
		}
	}
	return cand[len(cand)-1].id // rounding left r at the very top
}

// argmax returns the index of the largest logit, the first one on ties,
// ignoring NaNs (0 when all are NaN).
func argmax(x []float32) int {
	best, bi := float32(math.Inf(-1)), -1
	for i, v := range x {
		if v > best || (bi < 0 && v == v) {
			best, bi = v, i
		}
	}
	return max(bi, 0)
}

// sortCandidates orders by probability, then logit, descending, then by id,
// a total order so the result never depends on the sort algorithm.
func sortCandidates(c []candidate) {
	slices.SortFunc(c, func(a, b candidate) int {
		if a.p != b.p {
			return cmp.Compare(b.p, a.p)
		}
		if a.logit != b.logit {
			return cmp.Compare(b.logit, a.logit)
		}
		return cmp.Compare(a.id, b.id)
	})
}

// better reports whether a ranks above b: larger logit, then smaller id.
func better(a, b candidate) bool {
	return a.logit > b.logit || (a.logit == b.logit && a.id < b.id)
}

// topK appends the k best non-NaN logits to dst using a min-heap, best first.
func topK(dst []candidate, logits []float32, k int) []candidate {
	h := dst[:0]
	down := func(i int) {
		for {
			c := 2*i + 1
			if c >= len(h) {
				return
			}
			if c+1 < len(h) && better(h[c], h[c+1]) {
				c++
			}
			if !better(h[i], h[c]) {
				return
			}
			h[i], h[c] = h[c], h[i]
			i = c
		}
	}
	for i, v := range logits {
		if v != v {
			continue
		}
		c := candidate{id: i, logit: v}
		if len(h) < k {
			h = append(h, c)
			for j := len(h) - 1; j > 0; {
				p := (j - 1) / 2
				if !better(h[p], h[j]) {
					break
				}
				h[p], h[j] = h[j], h[p]
				j = p
			}
			continue
		}
		if better(c, h[0]) {
			h[0] = c
			down(0)
		}
	}
	slices.SortFunc(h, func(a, b candidate) int {
		if better(a, b) {
			return -1
		}
		if better(b, a) {
			return 1
		}
		return 0
	})
	return h
}
