// Package quantize stores a model's weight matrices in fewer bits, in GGUF's
// Q8_0, Q4_0 and Q4_1 blocks: round-to-nearest (RTN), byte for byte as
// llama.cpp's reference quantizers write them, or GPTQ, which rounds each
// decoder layer's matrices against the activations it sees on calibration
// text and writes the same block types. The int8 (per output channel) and
// int4 (per group of 32, 64 or 128) schemes round as compressed-tensors does;
// GPTQ keeps their RTN scales and rounds the weights against them.
package quantize

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shrinkml/shrink/model"
)

// Scheme is the storage a tensor is quantized (or converted) to.
type Scheme string

// The block schemes, and the plain float types a Rule may also choose.
const (
	Q8_0 Scheme = "q8_0"
	Q4_0 Scheme = "q4_0"
	Q4_1 Scheme = "q4_1"
	F16  Scheme = "f16"
	BF16 Scheme = "bf16"
	F32  Scheme = "f32"
	// Int8 is int8 with one fp16 scale per row (output channel), symmetric.
	Int8 Scheme = "int8"
	// Int4 is 4-bit codes with an fp16 scale per group of Options.Group
	// weights of a row, symmetric unless Options.Asym.
	Int4 Scheme = "int4"
)

var schemeDTypes = map[Scheme]model.DType{
	Q8_0: model.Q8_0, Q4_0: model.Q4_0, Q4_1: model.Q4_1,
	F16: model.F16, BF16: model.BF16, F32: model.F32,
	Int8: model.Int8Ch, Int4: model.Int4G128,
}

// ParseScheme reads a scheme name in any case: q8_0, q4_0, q4_1, int8, int4,
// f16, bf16 or f32.
func ParseScheme(s string) (Scheme, error) {
	sc := Scheme(strings.ToLower(s))
	if _, ok := schemeDTypes[sc]; !ok {
		return "", fmt.Errorf("unknown scheme %q: want q8_0, q4_0, q4_1, int8, int4 (or f16, bf16, f32 in a rule)", s)
	}
	return sc, nil
}

// DType is the storage type of the scheme, or model.Invalid for an unknown
// one; Int4's is its default, groups of DefaultGroup, symmetric.
func (s Scheme) DType() model.DType { return schemeDTypes[s] }

// DefaultGroup is the int4 group size when Options.Group is 0: 128, the
// size GPTQ checkpoints and vLLM's kernels use most.
const DefaultGroup = 128

// Block reports whether the scheme packs weights into quantized blocks.
func (s Scheme) Block() bool { return s.DType().Quantized() }

// Method is the algorithm that picks the quantized values.
type Method string

// The methods.
const (
	// RTN rounds every weight to the nearest level of its block, on its own.
	RTN Method = "rtn"
	// GPTQ rounds a matrix column by column and spreads each column's
	// rounding error over the columns not yet rounded, through the inverse
	// Hessian of the layer's calibration inputs (Frantar et al., 2022).
	GPTQ Method = "gptq"
)

// ParseMethod reads a method name: rtn, gptq, awq or awq+gptq.
func ParseMethod(s string) (Method, error) {
	if m := Method(strings.ToLower(s)); m == RTN || m.NeedsCalibration() {
		return m, nil
	}
	return "", fmt.Errorf("unknown method %q: want rtn, gptq, awq or awq+gptq", s)
}

// Rule stores the matrices whose name Pattern matches with Scheme.
type Rule struct {
	Pattern *regexp.Regexp
	Scheme  Scheme
}

// ParseRule reads "REGEX=SCHEME", e.g. `mlp\.down_proj=q8_0`; the last "="
// splits, so the pattern may contain one.
func ParseRule(s string) (Rule, error) {
	i := strings.LastIndex(s, "=")
	if i < 0 {
		return Rule{}, fmt.Errorf("rule %q: want REGEX=SCHEME", s)
	}
	sc, err := ParseScheme(s[i+1:])
	if err != nil {
		return Rule{}, fmt.Errorf("rule %q: %w", s, err)
	}
	re, err := regexp.Compile(s[:i])
	if err != nil {
		return Rule{}, fmt.Errorf("rule %q: %w", s, err)
	}
	return Rule{Pattern: re, Scheme: sc}, nil
}

func (r Rule) String() string { return r.Pattern.String() + "=" + string(r.Scheme) }

// Options choose what is quantized and how.
type Options struct {
	// Scheme is the block type for the matrices: Q8_0, Q4_0 or Q4_1.
	Scheme Scheme
	// Method is the algorithm; empty means RTN.
	Method Method
	// Group is the int4 group size: 32, 64 or 128; 0 means DefaultGroup.
	// A matrix whose rows are not a whole number of groups gets the largest
	// smaller group that fits, else Int8 (one scale per row fits any row).
	Group int
	// Asym gives int4 groups an integer zero point, so a group's range
	// need not be centred on zero.
	Asym bool
	// Pure stores every matrix, embedding and output head included, with
	// Scheme. Otherwise the output head (and a tied embedding, which is the
	// head too) gets Q8_0 when Scheme is 4-bit, as llama.cpp keeps its most
	// sensitive matrix at higher precision.
	Pure bool
	// Rules override the choice for matching matrices; the first match wins.
	// Patterns are unanchored searches over Hugging Face tensor names.
	Rules []Rule
	// Keep leaves matching tensors as they are; it wins over Rules.
	Keep []*regexp.Regexp
	// Threads is the number of goroutines; 0 means GOMAXPROCS. The output
	// does not depend on it.
	Threads int
	// Progress, when set, is called with the number of weights written so far
	// and the total to write. Calls are serialized and done never decreases.
	// With GPTQ it counts the weights of the decoder layers' matrices.
	Progress func(done, total int64)

	// Calibration is the token sequences GPTQ and AWQ fit each layer to
	// (each at most the model's context length); see calib.Windows. Every
	// method but RTN needs it.
	Calibration [][]int
	// ActOrder makes GPTQ round columns by decreasing Hessian diagonal (the
	// most active inputs first), with every block's scale chosen up front
	// from the original weights ("static groups").
	ActOrder bool
	// AbsmaxScales makes GPTQ keep RTN's block scales (and the int schemes'
	// scales and zero points), set by each block's largest weights, instead
	// of searching each block for the scale that adds least to the layer's
	// output error.
	AbsmaxScales bool
	// Damp is the dampening added to each Hessian's diagonal, as a fraction
	// of its mean; 0 means calib.DefaultDamp (1%). It is raised tenfold
	// where a Hessian does not factorize, and the report says so.
	Damp float64
}

// HeadScheme is the scheme the output head gets by default: Q8_0 under Q4_0
// and Q4_1, Int8 under Int4, the scheme itself otherwise.
func (o *Options) HeadScheme() Scheme {
	switch o.Scheme {
	case Q4_0, Q4_1:
		return Q8_0
	case Int4:
		return Int8
	}
	return o.Scheme
}

// SchemeDType is the storage type of scheme s under o: for Int4, the INT4
// type of o's group size and symmetry.
func (o *Options) SchemeDType(s Scheme) model.DType {
	if s != Int4 {
		return s.DType()
	}
	g := o.Group
	if g == 0 {
		g = DefaultGroup
	}
	return Int4DType(g, o.Asym)
}

// BlockFallback is the storage of a matrix whose rows are not a whole number
// of blocks: no 32-weight block fits, so it is stored as F16 (a BF16 or F16
// source is left as it is). An int4 matrix falls back to a smaller group or
// to int8 instead (see Options.Group).
const BlockFallback = model.F16

// Action says what happened to a tensor.
type Action string

// The actions of a TensorReport.
const (
	Quantized Action = "quantized" // stored in a block type
	Kept      Action = "kept"      // left as it was
	Fallback  Action = "fallback"  // meant for a block type its rows do not fit; see BlockFallback
	Converted Action = "converted" // stored as another float type by a rule
)

// TensorReport describes what happened to one tensor.
type TensorReport struct {
	Name        string
	Shape       []int
	From, To    model.DType
	Action      Action
	Why         string // the rule that chose the action, e.g. "1-D", "head", "--type ..."
	BytesBefore int64
	BytesAfter  int64
	// RelRMSE is ||W - deq(Q(W))|| / ||W|| over the whole tensor (0 when kept).
	RelRMSE float64
	// Damp is the dampening GPTQ used for the tensor's Hessian, as a fraction
	// of its mean diagonal (0 when GPTQ did not quantize it).
	Damp float64
}

// tensorReportJSON is TensorReport with dtypes by name.
type tensorReportJSON struct {
	Name        string  `json:"name"`
	Shape       []int   `json:"shape"`
	From        string  `json:"from"`
	To          string  `json:"to"`
	Action      Action  `json:"action"`
	Why         string  `json:"why"`
	BytesBefore int64   `json:"bytes_before"`
	BytesAfter  int64   `json:"bytes_after"`
	RelRMSE     float64 `json:"rel_rmse"`
	Damp        float64 `json:"damp,omitempty"`
}

// MarshalJSON writes dtypes by name ("F32", "Q4_0").
func (t TensorReport) MarshalJSON() ([]byte, error) {
	return json.Marshal(tensorReportJSON{t.Name, t.Shape, t.From.String(), t.To.String(), t.Action, t.Why, t.BytesBefore, t.BytesAfter, t.RelRMSE, t.Damp})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (t *TensorReport) UnmarshalJSON(b []byte) error {
	var j tensorReportJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	from, err := model.ParseDType(j.From)
	if err != nil {
		return err
	}
	to, err := model.ParseDType(j.To)
	if err != nil {
		return err
	}
	*t = TensorReport{j.Name, j.Shape, from, to, j.Action, j.Why, j.BytesBefore, j.BytesAfter, j.RelRMSE, j.Damp}
	return nil
}

// Report summarizes a quantization run.
type Report struct {
	Scheme     Scheme         `json:"scheme"`
	Method     Method         `json:"method"`
	Pure       bool           `json:"pure"`
	Group      int            `json:"group,omitempty"` // int4's options
	Asym       bool           `json:"asym,omitempty"`
	Tensors    []TensorReport `json:"tensors"`
	Quantized  int            `json:"quantized"`
	Kept       int            `json:"kept"`
	Fallback   int            `json:"fallback"`
	Converted  int            `json:"converted"`
	Parameters int64          `json:"parameters"`
	// Sizes count tensor data (a GGUF head stored as a copy of the embedding
	// counts as its own matrix); BitsPerWeight is 8*BytesAfter/Parameters.
	BytesBefore         int64   `json:"bytes_before"`
	BytesAfter          int64   `json:"bytes_after"`
	BitsPerWeightBefore float64 `json:"bits_per_weight_before"`
	BitsPerWeight       float64 `json:"bits_per_weight"`
	// The relative RMSE figures cover every tensor that was rewritten.
	WorstRelRMSE float64 `json:"worst_rel_rmse"`
	WorstTensor  string  `json:"worst_tensor,omitempty"`
	MeanRelRMSE  float64 `json:"mean_rel_rmse"`
	// GPTQ only: the calibration tokens, whether columns went in act
	// order, how block scales were chosen ("search" or "absmax"), and the
	// largest dampening any Hessian needed.
	CalibrationTokens int     `json:"calibration_tokens,omitempty"`
	ActOrder          bool    `json:"act_order,omitempty"`
	BlockScales       string  `json:"block_scales,omitempty"`
	MaxDamp           float64 `json:"max_damp,omitempty"`
	// AWQ only: the exponent chosen for each linear group of each layer.
	AWQ      []AWQGroup `json:"awq,omitempty"`
	Threads  int        `json:"threads"`
	Seconds  float64    `json:"seconds"`
	Warnings []string   `json:"warnings"`
}

// outputCopyKey marks a model whose file stores the output head as a byte
// copy of the embedding. Such a file has two matrices, and llama.cpp
// quantizes them separately.
const outputCopyKey = model.MetaOutputCopy

// rowFunc encodes whole rows of weights.
type rowFunc func(dst []byte, src []float32) error

var rtnRows = map[Scheme]rowFunc{Q8_0: RowQ8_0, Q4_0: RowQ4_0, Q4_1: RowQ4_1}

// rowsOf is the RTN row encoder of the quantized type d.
func rowsOf(d model.DType) rowFunc {
	if d == model.Int8Ch {
		return RowInt8Ch
	}
	if _, _, ok := Int4Layout(d); ok {
		return func(dst []byte, src []float32) error { return RowInt4(d, dst, src) }
	}
	for sc, f := range rtnRows {
		if sc.DType() == d {
			return f
		}
	}
	return nil
}

// runJobs runs jobs 0 to n-1 on up to threads goroutines, each claiming the
// next job in turn until none is left. Each goroutine asks newWorker once for
// the function it runs its jobs with, so that scratch memory lives across
// them; results must not depend on which goroutine ran a job.
func runJobs(threads, n int, newWorker func() func(j int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(threads, n) {
		wg.Go(func() {
			work := newWorker()
			for {
				j := int(next.Add(1) - 1)
				if j >= n {
					return
				}
				work(j)
			}
		})
	}
	wg.Wait()
}

// Quantize returns a copy of m whose matrices are stored as opts choose; m is
// not modified. Unchanged tensors share their data with m, so m must stay open
// while the result is used; closing the result releases nothing.
func Quantize(m *model.Model, opts Options) (*model.Model, Report, error) {
	start := time.Now()
	if opts.Method == "" {
		opts.Method = RTN
	}
	if opts.Method != RTN && !opts.Method.NeedsCalibration() {
		return nil, Report{}, fmt.Errorf("unknown method %q: want rtn, gptq, awq or awq+gptq", opts.Method)
	}
	if opts.Method.NeedsCalibration() && len(opts.Calibration) == 0 {
		return nil, Report{}, fmt.Errorf("%s needs calibration sequences", opts.Method)
	}
	if opts.Damp < 0 {
		return nil, Report{}, fmt.Errorf("damp %g: must not be negative", opts.Damp)
	}
	if !opts.Scheme.Block() {
		return nil, Report{}, fmt.Errorf("scheme %q: want q8_0, q4_0, q4_1, int8 or int4", opts.Scheme)
	}
	if opts.Group != 0 && Int4DType(opts.Group, false) == model.Invalid {
		return nil, Report{}, fmt.Errorf("group %d: want 32, 64 or 128", opts.Group)
	}
	for i, r := range opts.Rules {
		if r.Pattern == nil {
			return nil, Report{}, fmt.Errorf("rule %d has no pattern", i+1)
		}
		if r.Scheme.DType() == model.Invalid {
			return nil, Report{}, fmt.Errorf("rule %q: unknown scheme %q", r.Pattern, r.Scheme)
		}
	}

	if slices.Contains(opts.Keep, nil) {
		return nil, Report{}, fmt.Errorf("a keep pattern is nil")
	}
	threads := opts.Threads
	if threads < 0 {
		return nil, Report{}, fmt.Errorf("threads %d: must not be negative", threads)
	} else if threads == 0 {
		threads = runtime.GOMAXPROCS(0)
	}

	out := &model.Model{Config: m.Config, Tokenizer: m.Tokenizer, Source: m.Source,
		Metadata: maps.Clone(m.Metadata), Tensors: append([]*model.Tensor(nil), m.Tensors...)}
	if copyHead, _ := m.Metadata[outputCopyKey].(bool); copyHead && m.Config.TiedEmbeddings &&
		m.Tensor(model.OutputHead) == nil && m.Tensor(model.TokenEmbedding) != nil {
		head := *m.Tensor(model.TokenEmbedding)
		head.Name = model.OutputHead
		out.Tensors = append(out.Tensors, &head)
		out.Config.TiedEmbeddings = false
		delete(out.Metadata, outputCopyKey)
	}

	plans, warnings, err := plan(out, &opts)
	if err != nil {
		return nil, Report{}, err
	}
	rep := Report{Scheme: opts.Scheme, Method: opts.Method, Pure: opts.Pure, Threads: threads, Warnings: warnings}
	if opts.Scheme == Int4 {
		rep.Group, rep.Asym = opts.Group, opts.Asym
		if rep.Group == 0 {
			rep.Group = DefaultGroup
		}
	}
	if opts.Method.NeedsCalibration() {
		if err := runGPTQ(out, plans, &opts, threads, &rep.AWQ); err != nil {
			return nil, Report{}, err
		}
		if opts.Method.usesGPTQ() {
			rep.ActOrder = opts.ActOrder
			rep.BlockScales = "search"
			if opts.AbsmaxScales {
				rep.BlockScales = "absmax"
			}
		}
		for _, s := range opts.Calibration {
			rep.CalibrationTokens += len(s)
		}
	} else if err := run(out.Tensors, plans, threads, opts.Progress); err != nil {
		return nil, Report{}, err
	}

	var sumRMSE float64
	var rewritten int
	for i, t := range out.Tensors {
		p := &plans[i]
		tr := TensorReport{Name: t.Name, Shape: t.Shape, From: t.DType, To: t.DType, Action: p.action, Why: p.why,
			BytesBefore: int64(len(t.Data)), BytesAfter: int64(len(t.Data)), Damp: p.damp}
		rep.MaxDamp = max(rep.MaxDamp, p.damp)
		if p.action != Kept {
			tr.To, tr.BytesAfter = p.to, int64(len(p.data))
			if p.sumSq > 0 { // an all-zero tensor decodes exactly
				tr.RelRMSE = math.Sqrt(p.sumErr / p.sumSq)
			}
			out.Tensors[i] = &model.Tensor{Name: t.Name, DType: p.to, Shape: append([]int(nil), t.Shape...), Data: p.data}
			sumRMSE += tr.RelRMSE
			rewritten++
			if tr.RelRMSE > rep.WorstRelRMSE || rep.WorstTensor == "" {
				rep.WorstRelRMSE, rep.WorstTensor = tr.RelRMSE, t.Name
			}
		} else if p.data != nil { // a norm or bias AWQ divided its scales out of
			tr.To, tr.BytesAfter = p.to, int64(len(p.data))
			out.Tensors[i] = &model.Tensor{Name: t.Name, DType: p.to, Shape: append([]int(nil), t.Shape...), Data: p.data}
		}
		switch p.action {
		case Quantized:
			rep.Quantized++
		case Kept:
			rep.Kept++
		case Fallback:
			rep.Fallback++
		case Converted:
			rep.Converted++
		}
		rep.Parameters += int64(t.Elems())
		rep.BytesBefore += tr.BytesBefore
		rep.BytesAfter += tr.BytesAfter
		rep.Tensors = append(rep.Tensors, tr)
	}
	if rewritten > 0 {
		rep.MeanRelRMSE = sumRMSE / float64(rewritten)
	}
	if rep.Parameters > 0 {
		rep.BitsPerWeightBefore = 8 * float64(rep.BytesBefore) / float64(rep.Parameters)
		rep.BitsPerWeight = 8 * float64(rep.BytesAfter) / float64(rep.Parameters)
	}
	rep.Seconds = time.Since(start).Seconds()
	return out, rep, nil
}

// tensorPlan is what happens to one tensor, and after run its new bytes and
// error sums.
type tensorPlan struct {
	action Action
	why    string
	to     model.DType
	rows   rowFunc // nil for a float conversion
	data   []byte
	sumErr float64 // sum of squared errors
	sumSq  float64 // sum of squared weights
	gptq   bool    // quantized by runGPTQ, not run
	damp   float64 // GPTQ's dampening
}

// plan decides every tensor's fate: --keep, then the rules, then --pure or
// the defaults; 1-D tensors (norms, biases) and non-float tensors always stay.
func plan(m *model.Model, opts *Options) ([]tensorPlan, []string, error) {
	plans := make([]tensorPlan, len(m.Tensors))
	warnings := []string{}
	keepHits := make([]int, len(opts.Keep))
	ruleHits := make([]int, len(opts.Rules))
	tiedEmbedding := m.Config.TiedEmbeddings && m.Tensor(model.OutputHead) == nil
	requantized := map[model.DType]int{}
	for i, t := range m.Tensors {
		p := &plans[i]
		p.action, p.to = Kept, t.DType
		if err := t.Check(); err != nil {
			return nil, nil, err
		}
		if len(t.Shape) < 2 {
			p.why = "1-D"
			continue
		}
		if k := firstMatch(opts.Keep, t.Name); k >= 0 {
			keepHits[k]++
			p.why = "--keep " + opts.Keep[k].String()
			continue
		}
		if !t.DType.Float() {
			p.why = "not a float tensor"
			if t.DType.Quantized() {
				p.why = "already quantized"
				requantized[t.DType]++
			}
			continue
		}
		sc := opts.Scheme
		r := firstRule(opts.Rules, t.Name)
		switch {
		case r >= 0:
			ruleHits[r]++
			sc, p.why = opts.Rules[r].Scheme, "--type "+opts.Rules[r].String()
		case opts.Pure:
			p.why = "--pure"
		case t.Name == model.OutputHead:
			sc, p.why = opts.HeadScheme(), "output head"
		case t.Name == model.TokenEmbedding && tiedEmbedding:
			sc, p.why = opts.HeadScheme(), "tied embedding (the output head too)"
		default:
			p.why = "default"
		}
		to := opts.SchemeDType(sc)
		if g, asym, ok := Int4Layout(to); ok && t.Cols()%g != 0 {
			// The largest smaller group that fits, else int8, which fits any row.
			next := model.Int8Ch
			for h := g / 2; h >= 32; h /= 2 {
				if t.Cols()%h == 0 {
					next = Int4DType(h, asym)
					break
				}
			}
			warnings = append(warnings, fmt.Sprintf("%s: rows of %d weights are not a multiple of %d, so %s does not fit; stored as %s",
				t.Name, t.Cols(), g, to, next))
			p.why += fmt.Sprintf(" (%s: rows of %d)", next, t.Cols())
			to = next
		}
		switch {
		case !to.Quantized():
			if to != t.DType {
				p.action, p.to = Converted, to
			}
		case t.Cols()%to.BlockElems() != 0:
			p.to = BlockFallback
			if t.DType == model.BF16 || t.DType == model.F16 {
				p.to = t.DType
			}
			p.action = Fallback
			warnings = append(warnings, fmt.Sprintf("%s: rows of %d weights are not a multiple of %d, so %s does not fit; stored as %s",
				t.Name, t.Cols(), to.BlockElems(), to, p.to))
		default:
			p.action, p.to, p.rows = Quantized, to, rowsOf(to)
		}
	}
	for _, d := range slices.Sorted(maps.Keys(requantized)) {
		warnings = append(warnings, fmt.Sprintf("%d matrices are already %s and were kept: quantizing them again would add to their error; start from a float checkpoint",
			requantized[d], d))
	}
	for k, n := range keepHits {
		if n == 0 {
			warnings = append(warnings, fmt.Sprintf("keep pattern %q matched no matrix", opts.Keep[k]))
		}
	}
	for k, n := range ruleHits {
		if n == 0 {
			warnings = append(warnings, fmt.Sprintf("rule %q matched no matrix", opts.Rules[k]))
		}
	}
	return plans, warnings, nil
}

func firstMatch(res []*regexp.Regexp, name string) int {
	for i, re := range res {
		if re.MatchString(name) {
			return i
		}
	}
	return -1
}

func firstRule(rules []Rule, name string) int {
	for i, r := range rules {
		if r.Pattern.MatchString(name) {
			return i
		}
	}
	return -1
}

// job is a run of whole rows of one tensor.
type job struct {
	tensor     int
	row0, rows int
}

// jobElems is about how many weights one job covers: small enough to spread
// a single matrix over every thread, large enough to amortize the handoff.
const jobElems = 1 << 16

// run fills in every plan's data and error sums. Jobs are cut by rows only, and
// their partial sums are added in job order, so neither the bytes nor the
// report depend on the number of threads.
func run(ts []*model.Tensor, plans []tensorPlan, threads int, progress func(done, total int64)) error {
	var jobs []job
	var total int64
	for i, t := range ts {
		p := &plans[i]
		if p.action == Kept || p.gptq {
			continue
		}
		size, err := model.ByteSize(p.to, t.Shape)
		if err != nil {
			return fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		p.data = make([]byte, size)
		total += int64(t.Elems())
		step := max(1, jobElems/max(1, t.Cols()))
		for r := 0; r < t.Rows(); r += step {
			jobs = append(jobs, job{i, r, min(step, t.Rows()-r)})
		}
	}
	errs := make([]error, len(jobs))
	sums := make([][2]float64, len(jobs))
	var (
		mu   sync.Mutex // guards done and the progress calls
		done int64
	)
	runJobs(threads, len(jobs), func() func(j int) {
		var src, deq []float32
		return func(j int) {
			jb := jobs[j]
			t := ts[jb.tensor]
			n := jb.rows * t.Cols()
			if cap(src) < n {
				src, deq = make([]float32, n), make([]float32, n)
			}
			errs[j] = runJob(t, &plans[jb.tensor], jb, src[:n], deq[:n], &sums[j])
			if progress != nil {
				mu.Lock()
				done += int64(n)
				progress(done, total)
				mu.Unlock()
			}
		}
	})
	for j, err := range errs {
		if err != nil {
			return err
		}
		p := &plans[jobs[j].tensor]
		p.sumErr += sums[j][0]
		p.sumSq += sums[j][1]
	}
	return nil
}

// runJob encodes one job's rows and adds up its squared errors and weights.
func runJob(t *model.Tensor, p *tensorPlan, jb job, src, deq []float32, sums *[2]float64) error {
	cols := t.Cols()
	inRow := len(t.Data) / t.Rows()
	outRow := len(p.data) / t.Rows()
	in := t.Data[jb.row0*inRow : (jb.row0+jb.rows)*inRow]
	out := p.data[jb.row0*outRow : (jb.row0+jb.rows)*outRow]
	if err := model.Dequantize(src, t.DType, in); err != nil {
		return fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	where := func(i int) string {
		return fmt.Sprintf("tensor %q: row %d, column %d", t.Name, jb.row0+i/cols, i%cols)
	}
	for i, v := range src {
		if !finite(v) {
			return fmt.Errorf("%s: %v: %w", where(i), v, ErrNotFinite)
		}
	}
	if p.rows != nil {
		// Row by row, so that an error names the row it is in.
		for r := 0; r < jb.rows; r++ {
			if err := p.rows(out[r*outRow:(r+1)*outRow], src[r*cols:(r+1)*cols]); err != nil {
				return fmt.Errorf("tensor %q: row %d: %w", t.Name, jb.row0+r, err)
			}
		}
	} else {
		encodeFloat(out, p.to, src)
	}
	if err := model.Dequantize(deq, p.to, out); err != nil {
		return fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	var se, ss float64
	for i, v := range src {
		if !finite(deq[i]) {
			return fmt.Errorf("%s: %v does not fit in %s: %w", where(i), v, p.to, ErrScaleRange)
		}
		e := float64(v) - float64(deq[i])
		se += float64(e * e) // rounded, so no platform fuses it and the report is the same everywhere
		ss += float64(v) * float64(v)
	}
	sums[0], sums[1] = se, ss
	return nil
}

// encodeFloat stores src as the float type d.
func encodeFloat(dst []byte, d model.DType, src []float32) {
	switch d {
	case model.F16:
		model.EncodeF16(dst, src)
	case model.BF16:
		model.EncodeBF16(dst, src)
	case model.F32:
		for i, v := range src {
			bits := math.Float32bits(v)
			dst[4*i], dst[4*i+1], dst[4*i+2], dst[4*i+3] = byte(bits), byte(bits>>8), byte(bits>>16), byte(bits>>24)
		}
	}
}
