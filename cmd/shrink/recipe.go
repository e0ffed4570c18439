package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/shrinkml/shrink/model"
	"github.com/shrinkml/shrink/prune"
	"github.com/shrinkml/shrink/quantize"
)

// recipeHelp documents the recipe grammar in compare's --help.
const recipeHelp = `A recipe says how a variant is made from BASE:
  f32                  BASE as it is (always in the table, as "base")
  q8_0, q4_0, q4_1     round-to-nearest blocks with shrink quantize's defaults
                       (every matrix in the scheme; with a 4-bit scheme the
                       output head in Q8_0)
  SCHEME:METHOD        a quantization method: q4_0:rtn, q4_0:gptq, q4_0:awq
                       (SCHEME: q8_0, q4_0, q4_1, int8, int4; METHOD: rtn,
                       gptq, awq; int4 is groups of 128, symmetric)
  prune:METHOD:SPARSITY  unstructured pruning of that fraction of every
                       decoder matrix: prune:magnitude:0.5, prune:wanda:0.5
                       (METHOD: magnitude, wanda, sparsegpt)
  prune:N:M            N of every M weights zeroed, chosen by Wanda: prune:2:4
  prune:METHOD:N:M     the same with another method: prune:sparsegpt:2:4
  STEP+STEP            steps in order, pruning before quantization:
                       prune:2:4+q8_0 (rtn only: GPTQ would refill the zeros)
gptq, awq, wanda and sparsegpt run the model on calibration windows (see --calib).`

// Step kinds.
const (
	stepAsIs  = "as-is"
	stepQuant = "quantize"
	stepPrune = "prune"
)

// The names a recipe understands.
var (
	recipeSchemes      = []string{"q8_0", "q4_0", "q4_1", "int8", "int4"}
	recipeQuantMethods = []string{"rtn", "gptq", "awq"}
	recipePruneMethods = []string{"magnitude", "wanda", "sparsegpt"}
)

// recipe is a parsed recipe: steps applied to the base in order.
type recipe struct {
	text  string // canonical (lower-case) form, the variant's name
	steps []recipeStep
}

func (r recipe) String() string { return r.text }

// asIs reports whether the recipe is the base itself.
func (r recipe) asIs() bool { return len(r.steps) == 1 && r.steps[0].kind == stepAsIs }

type recipeStep struct {
	kind     string
	text     string
	scheme   string  // quantize
	method   string  // quantize or prune by method
	sparsity float64 // prune by method
	n, m     int     // prune N of every M
}

// parseRecipe reads a recipe; the errors name it and say what was wanted.
func parseRecipe(s string) (recipe, error) {
	text := strings.ToLower(strings.TrimSpace(s))
	if text == "" {
		return recipe{}, fmt.Errorf("recipe %q is empty: want f32, q8_0, q4_0, q4_1, SCHEME:METHOD, prune:METHOD:SPARSITY or prune:N:M", s)
	}
	r := recipe{text: text}
	var quant, prune bool
	for part := range strings.SplitSeq(text, "+") {
		st, err := parseStep(part)
		if err != nil {
			return recipe{}, fmt.Errorf("recipe %q: %w", s, err)
		}
		switch st.kind {
		case stepAsIs:
			if strings.Contains(text, "+") {
				return recipe{}, fmt.Errorf("recipe %q: f32 is the base as it is and stands alone", s)
			}
		case stepQuant:
			if quant {
				return recipe{}, fmt.Errorf("recipe %q: quantizes twice", s)
			}
			quant = true
		case stepPrune:
			if prune {
				return recipe{}, fmt.Errorf("recipe %q: prunes twice", s)
			}
			if quant {
				return recipe{}, fmt.Errorf("recipe %q: prune before quantizing, as in prune:2:4+q8_0", s)
			}
			prune = true
		}
		r.steps = append(r.steps, st)
	}
	return r, nil
}

func parseStep(s string) (recipeStep, error) {
	f := strings.Split(s, ":")
	st := recipeStep{text: s}
	switch {
	case s == "":
		return st, fmt.Errorf("an empty step (a '+' with nothing on one side)")
	case s == "f32":
		st.kind = stepAsIs
		return st, nil
	case f[0] == "prune":
		st.kind = stepPrune
		if len(f) != 3 && len(f) != 4 {
			return st, fmt.Errorf("%q: want prune:METHOD:SPARSITY (prune:wanda:0.5) or prune:[METHOD:]N:M (prune:2:4)", s)
		}
		if _, err := strconv.Atoi(f[1]); err == nil && len(f) == 3 {
			f = []string{f[0], "wanda", f[1], f[2]}
		}
		if !slices.Contains(recipePruneMethods, f[1]) {
			return st, fmt.Errorf("%q: unknown pruning method %q: want %s, or N:M", s, f[1], strings.Join(recipePruneMethods, ", "))
		}
		st.method = f[1]
		if len(f) == 4 {
			n, err1 := strconv.Atoi(f[2])
			m, err2 := strconv.Atoi(f[3])
			if err1 != nil || err2 != nil || n < 1 || m <= n {
				return st, fmt.Errorf("%q: N:M wants whole numbers with 0 < N < M, such as 2:4", s)
			}
			st.n, st.m = n, m
			return st, nil
		}
		sp, err := strconv.ParseFloat(f[2], 64)
		if err != nil || !(sp > 0 && sp < 1) {
			return st, fmt.Errorf("%q: sparsity %q: want the fraction of weights to remove, between 0 and 1 (0.5)", s, f[2])
		}
		st.sparsity = sp
		return st, nil
	case slices.Contains(recipeSchemes, f[0]):
		st.kind, st.scheme, st.method = stepQuant, f[0], string(quantize.RTN)
		if len(f) > 2 {
			return st, fmt.Errorf("%q: want SCHEME or SCHEME:METHOD", s)
		}
		if len(f) == 2 {
			if !slices.Contains(recipeQuantMethods, f[1]) {
				return st, fmt.Errorf("%q: unknown quantization method %q: want %s", s, f[1], strings.Join(recipeQuantMethods, ", "))
			}
			st.method = f[1]
		}
		return st, nil
	}
	return st, fmt.Errorf("unknown step %q: want f32, a scheme (%s), SCHEME:METHOD, prune:METHOD:SPARSITY or prune:N:M",
		s, strings.Join(recipeSchemes, ", "))
}

// variantBuild is what building a variant needs besides the base and the
// recipe.
type variantBuild struct {
	threads int
	// calib returns the calibration windows; it is called only for the
	// recipes that need them.
	calib func() ([][]int, error)
	// progress, when set, follows each step's work (label, done, total).
	progress func(step string, done, total int64)
}

// quantAvailable reports whether a quantization step can be built.
func (s recipeStep) quantAvailable() bool {
	return s.kind == stepQuant && quantize.Scheme(s.scheme).Block()
}

// needsCalibration reports whether a step runs the model on calibration text.
func (s recipeStep) needsCalibration() bool {
	return (s.quantAvailable() && quantize.Method(s.method).NeedsCalibration()) ||
		(s.kind == stepPrune && prune.Method(s.method).NeedsCalibration())
}

// needsCalibration reports whether any step of r does.
func (r recipe) needsCalibration() bool {
	return slices.ContainsFunc(r.steps, recipeStep.needsCalibration)
}

// buildVariant makes the model recipe r describes from base (which must stay
// open while the result is used).
func buildVariant(base *model.Model, r recipe, b variantBuild) (*model.Model, error) {
	m := base
	pruned := false
	for _, s := range r.steps {
		var calibration [][]int
		if s.needsCalibration() {
			var err error
			if calibration, err = b.calib(); err != nil {
				return nil, fmt.Errorf("recipe %q: %w", r, err)
			}
		}
		onProgress := func(done, total int64) {
			if b.progress != nil {
				b.progress(s.text, done, total)
			}
		}
		switch {
		case s.kind == stepAsIs:
		case s.quantAvailable():
			if pruned && s.method == string(quantize.GPTQ) {
				return nil, fmt.Errorf("recipe %q: GPTQ after pruning would refill the pruned weights; quantize a pruned model with rtn", r)
			}
			opts := quantize.Options{Scheme: quantize.Scheme(s.scheme), Method: quantize.Method(s.method),
				Calibration: calibration, Threads: b.threads, Progress: onProgress}
			q, _, err := quantize.Quantize(m, opts)
			if err != nil {
				return nil, fmt.Errorf("recipe %q: %w", r, err)
			}
			m = q
		case s.kind == stepPrune:
			opts := prune.Options{Method: prune.Method(s.method), Sparsity: s.sparsity,
				Pattern: prune.Pattern{N: s.n, M: s.m}, Calibration: calibration, Threads: b.threads, Progress: onProgress}
			p, _, err := prune.Prune(m, opts)
			if err != nil {
				return nil, fmt.Errorf("recipe %q: %w", r, err)
			}
			m, pruned = p, true
		default:
			return nil, fmt.Errorf("recipe %q: %s is not available yet", r, s.describe())
		}
	}
	return m, nil
}

// describe names what a step does, for messages.
func (s recipeStep) describe() string {
	switch {
	case s.kind == stepQuant:
		return fmt.Sprintf("%s quantization by %s", s.scheme, s.method)
	case s.kind == stepPrune && s.m > 0:
		return fmt.Sprintf("%d:%d pruning by %s", s.n, s.m, s.method)
	case s.kind == stepPrune:
		return fmt.Sprintf("%s pruning to %g sparsity", s.method, s.sparsity)
	}
	return s.text
}
