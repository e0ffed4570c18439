package evalsuite

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/model"
)

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{9, 9, 1, 100, 2}, 9},
	} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %g, want %g", c.in, got, c.want)
		}
	}
}

// TestPrefillFLOPs counts a tiny model's arithmetic by hand.
func TestPrefillFLOPs(t *testing.T) {
	c := model.Config{HiddenSize: 4, IntermediateSize: 6, NumLayers: 2, NumHeads: 2, NumKVHeads: 1, HeadDim: 2, VocabSize: 10}
	// Per token and layer: q 4x4, k 2x4, v 2x4, o 4x4, gate/up/down 3x4x6:
	// 16+8+8+16+72 = 120 multiply-adds. Three tokens attend to 1+2+3 = 6
	// positions, each costing 2 heads x 2 dims x 2 (scores, values) = 8
	// multiply-adds. The head runs once: 10x4 = 40.
	want := 2 * (2*(3*120+6*8) + 40.0)
	if got := PrefillFLOPs(c, 3); got != want {
		t.Errorf("PrefillFLOPs = %g, want %g", got, want)
	}
}

func TestMeasureSpeed(t *testing.T) {
	m, err := model.Synthesize(model.Presets["stories260k"], 1)
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	sp, err := MeasureSpeed(m, SpeedOptions{Threads: 2, PromptTokens: 16, GenTokens: 8, Repeats: 3, OnRepeat: func() { calls++ }})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 4 {
		t.Errorf("OnRepeat called %d times, want 4 (warm-up and 3 repeats)", calls)
	}
	if sp.Threads != 2 || sp.PromptTokens != 16 || sp.GenTokens != 8 || sp.Repeats != 3 {
		t.Errorf("settings not reported: %+v", sp)
	}
	if !(sp.PrefillTokensPerS > 0 && sp.DecodeTokensPerS > 0 && sp.BandwidthBytesPerS > 0 && sp.BandwidthFraction > 0 && sp.PrefillFLOPsPerS > 0) {
		t.Errorf("a rate is not positive: %+v", sp)
	}
	// Per-token latencies are positive and their percentiles ordered.
	if !(sp.DecodeLatencyP50Ms > 0 && sp.DecodeLatencyP95Ms >= sp.DecodeLatencyP50Ms) {
		t.Errorf("decode latency p50 %g ms, p95 %g ms", sp.DecodeLatencyP50Ms, sp.DecodeLatencyP95Ms)
	}
	// Every matrix (the tied embedding as the head), the norms, in F32.
	c := m.Config
	wantBytes := int64(4 * (c.NumLayers*(c.HiddenSize*(c.HiddenSize+2*32+c.HiddenSize+3*c.IntermediateSize)+2*c.HiddenSize) +
		c.VocabSize*c.HiddenSize + c.HiddenSize))
	if sp.BytesPerToken != wantBytes {
		t.Errorf("bytes per token %d, want %d", sp.BytesPerToken, wantBytes)
	}
}

// TestDecodeTimer checks that only timed runs count, in the rates, the
// seconds and the latencies.
func TestDecodeTimer(t *testing.T) {
	m, err := model.Synthesize(model.Presets["stories260k"], 1)
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDecodeTimer(m, SpeedOptions{Threads: 1, PromptTokens: 8, GenTokens: 4, Repeats: 99})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Run(false); err != nil {
		t.Fatal(err)
	}
	if d.Runs() != 0 || d.Seconds() != 0 || d.DecodeTokensPerS() != 0 || d.LatencyMs(0.5) != 0 {
		t.Fatalf("an untimed run counted: %d runs, %g s, %g tok/s", d.Runs(), d.Seconds(), d.DecodeTokensPerS())
	}
	for range 3 {
		if err := d.Run(true); err != nil {
			t.Fatal(err)
		}
	}
	if d.Runs() != 3 || !(d.Seconds() > 0) || !(d.DecodeTokensPerS() > 0) || !(d.PrefillTokensPerS() > 0) {
		t.Fatalf("after 3 timed runs: %d runs, %g s, decode %g tok/s, prefill %g tok/s",
			d.Runs(), d.Seconds(), d.DecodeTokensPerS(), d.PrefillTokensPerS())
	}
	if p50, p95 := d.LatencyMs(0.5), d.LatencyMs(0.95); !(p50 > 0 && p95 >= p50) {
		t.Errorf("latency p50 %g ms, p95 %g ms", p50, p95)
	}
	if _, err := NewDecodeTimer(m, SpeedOptions{PromptTokens: 500, GenTokens: 64}); err == nil {
		t.Error("a run longer than the context was accepted")
	}
}

func TestMeasureSpeedErrors(t *testing.T) {
	m, err := model.Synthesize(model.Presets["stories260k"], 1)
	if err != nil {
		t.Fatal(err)
	}
	m.Source = "tiny.gguf"
	_, err = MeasureSpeed(m, SpeedOptions{PromptTokens: 500, GenTokens: 64})
	if err == nil || !strings.Contains(err.Error(), "exceed the context of 512") {
		t.Errorf("too many tokens: %v", err)
	}
}

func ExamplePrefillFLOPs() {
	c := model.Presets["llama-134m"]
	fmt.Printf("%.1f GFLOP for a 128-token prefill\n", PrefillFLOPs(c, 128)/1e9)
	// Output: 22.1 GFLOP for a 128-token prefill
}

// TestPeakRSS checks that the peak grows to cover memory this process touches.
func TestPeakRSS(t *testing.T) {
	before := PeakRSS()
	if runtime.GOOS != "linux" {
		t.Skipf("PeakRSS is checked on Linux; here it reports %d", before)
	}
	buf := make([]byte, 64<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	after := PeakRSS()
	runtime.KeepAlive(buf)
	if !(after >= before && after >= 64<<20) {
		t.Errorf("peak RSS %d bytes before and %d after touching 64 MiB", before, after)
	}
}
