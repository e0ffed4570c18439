// Package prune sets a model's weights to zero, or removes whole FFN neurons
// and attention heads, choosing what to drop by magnitude, by Wanda's
// |w|·||x|| score, or by SparseGPT's second-order criterion with weight
// updates. Methods that look at activations run the model one decoder layer at
// a time, so that the pruned outputs of layer i are what layer i+1 is fitted to.
package prune

import (
	"fmt"
	"maps"
	"math"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shrinkml/shrink/model"
)

// Method is the rule that picks which weights go.
type Method string

// The pruning methods.
const (
	// Magnitude drops the weights of smallest |w|.
	Magnitude Method = "magnitude"
	// Wanda drops the weights of smallest |w_ij|·||X_j||₂, compared within
	// each output row (Sun et al. 2023).
	Wanda Method = "wanda"
	// SparseGPT picks the mask by w²/[H⁻¹]_jj² in blocks of columns and
	// updates the remaining weights to make up for each pruned one (Frantar
	// & Alistarh 2023).
	SparseGPT Method = "sparsegpt"
)

// ParseMethod reads a method name in any case.
func ParseMethod(s string) (Method, error) {
	switch m := Method(strings.ToLower(s)); m {
	case Magnitude, Wanda, SparseGPT:
		return m, nil
	}
	return "", fmt.Errorf("unknown method %q: want magnitude, wanda or sparsegpt", s)
}

// NeedsCalibration reports whether the method scores weights by activations.
func (m Method) NeedsCalibration() bool { return m == Wanda || m == SparseGPT }

// Pattern is semi-structured N:M sparsity: in every group of M consecutive
// weights along a row, N are kept. The zero Pattern means unstructured.
type Pattern struct{ N, M int }

// ParsePattern reads "N:M", e.g. "2:4".
func ParsePattern(s string) (Pattern, error) {
	a, b, ok := strings.Cut(s, ":")
	n, err1 := strconv.Atoi(a)
	m, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil {
		return Pattern{}, fmt.Errorf("pattern %q: want N:M, e.g. 2:4", s)
	}
	p := Pattern{n, m}
	return p, p.check()
}

func (p Pattern) check() error {
	if p.N < 1 || p.M < 1 || p.N > p.M {
		return fmt.Errorf("pattern %d:%d: want 1 <= N <= M", p.N, p.M)
	}
	return nil
}

// IsZero reports whether p is the zero Pattern (unstructured sparsity).
func (p Pattern) IsZero() bool { return p.M == 0 }

func (p Pattern) String() string {
	if p.IsZero() {
		return ""
	}
	return fmt.Sprintf("%d:%d", p.N, p.M)
}

// Structure names what structured pruning removes.
type Structure string

// The structured modes.
const (
	// FFN removes intermediate neurons: rows of gate and up, columns of down.
	FFN Structure = "ffn"
	// Heads removes attention heads a whole KV group at a time: the query
	// heads that share a key/value head, that key/value head, and their
	// output-projection columns.
	Heads Structure = "heads"
)

// ParseStructure reads "ffn" or "heads".
func ParseStructure(s string) (Structure, error) {
	switch st := Structure(strings.ToLower(s)); st {
	case FFN, Heads:
		return st, nil
	}
	return "", fmt.Errorf("unknown structure %q: want ffn or heads", s)
}

// Scope says over which weights magnitude pruning sets one threshold.
type Scope string

// The magnitude scopes.
const (
	// PerTensor gives every tensor the same sparsity.
	PerTensor Scope = "layer"
	// Global sets one threshold over every selected tensor, so tensors of
	// small weights lose more of them.
	Global Scope = "global"
)

// Options choose what is pruned and how.
type Options struct {
	Method Method
	// Sparsity is the fraction of weights set to zero (or, structured, of FFN
	// neurons or KV groups removed), in [0, 1). Unused with a Pattern.
	Sparsity float64
	// Pattern, when not zero, asks for N:M sparsity instead.
	Pattern Pattern
	// Structured, when set, removes neurons or heads instead of single weights.
	Structured Structure
	// Scope is Magnitude's threshold scope; empty means PerTensor.
	Scope Scope
	// Include adds tensors to the default selection (the seven linear
	// matrices of every decoder layer, or an MLP's weights); Exclude removes
	// tensors from it and wins. Both are unanchored searches over Hugging
	// Face tensor names.
	Include, Exclude *regexp.Regexp
	// Calibration holds token sequences the model is run on: required by
	// Wanda and SparseGPT; with Magnitude it only adds the output errors to
	// the report.
	Calibration [][]int
	// Damp is SparseGPT's dampening as a fraction of H's mean diagonal
	// (0 means calib.DefaultDamp); it is raised when H + λI does not factor.
	Damp float64
	// BlockSize is SparseGPT's column block (0 means 128).
	BlockSize int
	// Threads is the number of goroutines; 0 means GOMAXPROCS. The output
	// does not depend on it.
	Threads int
	// Progress, when set, is called with the weights handled so far and the
	// total. Calls are serialized.
	Progress func(done, total int64)
}

// MatrixReport describes what happened to one tensor.
type MatrixReport struct {
	Name string `json:"name"`
	// Layer is the decoder layer, or -1 for a tensor outside the layers.
	Layer       int   `json:"layer"`
	ShapeBefore []int `json:"shape_before"`
	Shape       []int `json:"shape"`
	// Params counts the elements before pruning; Kept the nonzero elements after.
	Params int64 `json:"params"`
	Kept   int64 `json:"kept"`
	// Sparsity is 1 - Kept/Params.
	Sparsity float64 `json:"sparsity"`
	// RelOutputError is ||WX - ŴX||_F / ||WX||_F over the calibration
	// inputs this matrix saw; nil without calibration.
	RelOutputError *float64 `json:"rel_output_error"`
	// Damp is the dampening SparseGPT used, as a fraction of H's mean diagonal.
	Damp float64 `json:"damp,omitempty"`
}

// Report summarizes a pruning run.
type Report struct {
	Method     Method    `json:"method"`
	Sparsity   float64   `json:"sparsity"`
	Pattern    string    `json:"pattern,omitempty"`
	Structured Structure `json:"structured,omitempty"`
	Scope      Scope     `json:"scope,omitempty"`
	// CalibSequences and CalibTokens describe the calibration data (0 without).
	CalibSequences int            `json:"calib_sequences"`
	CalibTokens    int            `json:"calib_tokens"`
	Matrices       []MatrixReport `json:"matrices"`
	// Selected counts the elements of the selected tensors before pruning,
	// SelectedKept their nonzero elements after; ReachedSparsity is
	// 1 - SelectedKept/Selected.
	Selected        int64   `json:"selected"`
	SelectedKept    int64   `json:"selected_kept"`
	ReachedSparsity float64 `json:"reached_sparsity"`
	// Parameters count every tensor's elements; ParametersKept the nonzero
	// ones after pruning (a structured run removes elements outright).
	ParametersBefore int64 `json:"parameters_before"`
	ParametersAfter  int64 `json:"parameters_after"`
	ParametersKept   int64 `json:"parameters_kept"`
	// Bytes count dense tensor data before and after.
	BytesBefore int64    `json:"bytes_before"`
	BytesAfter  int64    `json:"bytes_after"`
	Threads     int      `json:"threads"`
	Seconds     float64  `json:"seconds"`
	Warnings    []string `json:"warnings"`
}

// linearSuffixes are the seven matrices of a decoder layer, in the order a
// forward pass reaches them.
var linearSuffixes = []string{model.AttnQ, model.AttnK, model.AttnV, model.AttnO, model.FFNGate, model.FFNUp, model.FFNDown}

// target is one tensor to prune.
type target struct {
	index      int // in the output model's Tensors
	name       string
	layer      int    // -1 outside the decoder layers
	suffix     string // one of linearSuffixes, or ""
	rows, cols int
	dtype      model.DType
	w          []float32 // the original values (a copy)
	out        []float32 // the pruned values
	relErr     *float64
	damp       float64
}

// Prune returns a copy of m with the selected tensors pruned as opts ask; m
// is not modified. Unchanged tensors share their data with m, so m must stay
// open while the result is used.
func Prune(m *model.Model, opts Options) (*model.Model, Report, error) {
	start := time.Now()
	if err := check(m, &opts); err != nil {
		return nil, Report{}, err
	}
	out := &model.Model{Config: m.Config, Tokenizer: m.Tokenizer, Source: m.Source,
		Metadata: maps.Clone(m.Metadata), Tensors: append([]*model.Tensor(nil), m.Tensors...)}
	rep := Report{Method: opts.Method, Sparsity: opts.Sparsity, Pattern: opts.Pattern.String(),
		Structured: opts.Structured, Threads: opts.Threads, Warnings: []string{}}
	if opts.Method == Magnitude && opts.Structured == "" && opts.Pattern.IsZero() {
		rep.Scope = opts.Scope
	}
	if !opts.Pattern.IsZero() {
		rep.Sparsity = 1 - float64(opts.Pattern.N)/float64(opts.Pattern.M)
	}
	for _, s := range opts.Calibration {
		rep.CalibSequences++
		rep.CalibTokens += len(s)
	}
	for _, t := range m.Tensors {
		rep.ParametersBefore += int64(t.Elems())
		rep.BytesBefore += int64(len(t.Data))
	}

	if opts.Include != nil && !slices.ContainsFunc(m.Tensors, func(t *model.Tensor) bool { return opts.Include.MatchString(t.Name) }) {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("include pattern %q matched no tensor", opts.Include))
	}
	var targets []*target
	var err error
	if opts.Structured != "" {
		targets, err = pruneStructured(m, out, &opts)
	} else {
		targets, err = pruneWeights(m, out, &opts)
	}
	if err != nil {
		return nil, Report{}, err
	}
	if opts.Method.NeedsCalibration() {
		var names []string
		for _, t := range targets {
			if t.suffix == "" {
				names = append(names, t.name)
			}
		}
		if len(names) > 0 {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("%s: outside the decoder layers' linear groups, no calibration pass shows their inputs; pruned by magnitude",
				strings.Join(names, ", ")))
		}
	}

	for _, t := range targets {
		before := m.Tensors[t.index]
		after := out.Tensors[t.index]
		vals, err := after.Float32()
		if err != nil {
			return nil, Report{}, err
		}
		mr := MatrixReport{Name: t.name, Layer: t.layer, ShapeBefore: before.Shape, Shape: after.Shape,
			Params: int64(before.Elems()), RelOutputError: t.relErr, Damp: t.damp}
		for _, v := range vals {
			if v != 0 {
				mr.Kept++
			}
		}
		if mr.Params > 0 {
			mr.Sparsity = 1 - float64(mr.Kept)/float64(mr.Params)
		}
		rep.Selected += mr.Params
		rep.SelectedKept += mr.Kept
		rep.Matrices = append(rep.Matrices, mr)
	}
	if rep.Selected > 0 {
		rep.ReachedSparsity = 1 - float64(rep.SelectedKept)/float64(rep.Selected)
	}
	for _, t := range out.Tensors {
		rep.ParametersAfter += int64(t.Elems())
		rep.BytesAfter += int64(len(t.Data))
	}
	rep.ParametersKept = rep.ParametersAfter - (rep.Selected - rep.SelectedKept)
	if opts.Structured != "" {
		// Removed elements are gone from ParametersAfter already; count the
		// zeros a structured run leaves (none, normally) separately.
		var zeros int64
		for _, mr := range rep.Matrices {
			n := int64(1)
			for _, d := range mr.Shape {
				n *= int64(d)
			}
			zeros += n - mr.Kept
		}
		rep.ParametersKept = rep.ParametersAfter - zeros
	}
	rep.Seconds = time.Since(start).Seconds()
	if err := out.Validate(); err != nil {
		return nil, Report{}, fmt.Errorf("prune: the result is inconsistent: %w", err)
	}
	return out, rep, nil
}

// check validates opts against m and fills in defaults.
func check(m *model.Model, o *Options) error {
	if o.Method == "" {
		o.Method = Magnitude
	}
	if _, err := ParseMethod(string(o.Method)); err != nil {
		return err
	}
	if o.Threads < 0 {
		return fmt.Errorf("threads %d: must not be negative", o.Threads)
	} else if o.Threads == 0 {
		o.Threads = runtime.GOMAXPROCS(0)
	}
	if o.Scope == "" {
		o.Scope = PerTensor
	}
	if o.Scope != PerTensor && o.Scope != Global {
		return fmt.Errorf("scope %q: want layer or global", o.Scope)
	}
	if o.Scope == Global && (o.Method != Magnitude || !o.Pattern.IsZero() || o.Structured != "") {
		return fmt.Errorf("scope global is for unstructured magnitude pruning; wanda and sparsegpt compare weights within a matrix")
	}
	if !(o.Sparsity >= 0 && o.Sparsity < 1) {
		return fmt.Errorf("sparsity %g: want a fraction in [0, 1)", o.Sparsity)
	}
	if !o.Pattern.IsZero() {
		if err := o.Pattern.check(); err != nil {
			return err
		}
		if o.Structured != "" {
			return fmt.Errorf("an N:M pattern zeroes single weights; it does not combine with structured pruning")
		}
		if o.Sparsity != 0 {
			return fmt.Errorf("sparsity %g and pattern %s both given: an N:M pattern fixes the sparsity at %g",
				o.Sparsity, o.Pattern, 1-float64(o.Pattern.N)/float64(o.Pattern.M))
		}
	}
	if o.Structured != "" {
		if _, err := ParseStructure(string(o.Structured)); err != nil {
			return err
		}
		if o.Include != nil || o.Exclude != nil {
			return fmt.Errorf("structured pruning removes the same neurons or heads count from every layer (the config holds one size); --include and --exclude do not apply")
		}
		if m.Config.Arch != "llama" {
			return fmt.Errorf("structured pruning needs a llama-family model, not %q", m.Config.Arch)
		}
	}
	if o.Method.NeedsCalibration() {
		if len(o.Calibration) == 0 {
			return fmt.Errorf("method %s needs calibration data", o.Method)
		}
		if m.Config.Arch != "llama" {
			return fmt.Errorf("method %s runs a llama-family model on calibration text, not %q", o.Method, m.Config.Arch)
		}
	}
	if len(o.Calibration) > 0 && m.Config.Arch != "llama" {
		return fmt.Errorf("calibration needs a llama-family model, not %q", m.Config.Arch)
	}
	if o.Damp < 0 || math.IsNaN(o.Damp) {
		return fmt.Errorf("dampening %g: must not be negative", o.Damp)
	}
	if o.BlockSize < 0 {
		return fmt.Errorf("block size %d: must not be negative", o.BlockSize)
	}
	return nil
}

// selected reports whether the tensor is pruned: the default set plus
// Include, minus Exclude.
func selected(cfg *model.Config, name string, o *Options) (layer int, suffix string, ok bool) {
	layer, suffix = layerOf(cfg, name)
	def := suffix != ""
	if cfg.Arch == "mlp" && strings.HasSuffix(name, ".weight") && strings.HasPrefix(name, "layers.") {
		def = true
	}
	ok = def || (o.Include != nil && o.Include.MatchString(name))
	if o.Exclude != nil && o.Exclude.MatchString(name) {
		ok = false
	}
	return layer, suffix, ok
}

// layerOf returns the layer and linear suffix of a decoder layer matrix.
func layerOf(cfg *model.Config, name string) (int, string) {
	if cfg.Arch != "llama" {
		return -1, ""
	}
	l, suffix, ok := model.ParseLayerTensor(name)
	if !ok || l >= cfg.NumLayers {
		return -1, ""
	}
	for _, s := range linearSuffixes {
		if s == suffix {
			return l, s
		}
	}
	return l, ""
}

// newTensor stores values with the dtype and shape of like.
func newTensor(like *model.Tensor, shape []int, values []float32) (*model.Tensor, error) {
	t := model.NewF32(like.Name, shape, values)
	if like.DType == model.F32 {
		return t, nil
	}
	return t.Convert(like.DType)
}

func finite(v float32) bool { return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) }

// loadValues copies a tensor's values, refusing what cannot be pruned.
func loadValues(t *model.Tensor) ([]float32, error) {
	if !t.DType.Float() {
		return nil, fmt.Errorf("tensor %q is %s: prune a float checkpoint (F32, F16 or BF16), then quantize", t.Name, t.DType)
	}
	v, err := t.Float32()
	if err != nil {
		return nil, err
	}
	v = append([]float32(nil), v...)
	for i, x := range v {
		if !finite(x) {
			return nil, fmt.Errorf("tensor %q: row %d, column %d is %v", t.Name, i/t.Cols(), i%t.Cols(), x)
		}
	}
	return v, nil
}

// progressCounter serializes progress calls.
type progressCounter struct {
	done, total int64
	fn          func(done, total int64)
}

func (p *progressCounter) add(n int64) {
	p.done += n
	if p.fn != nil {
		p.fn(p.done, p.total)
	}
}
