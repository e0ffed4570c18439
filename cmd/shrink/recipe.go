package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/shrinkml/shrink/model"
	"github.com/shrinkml/shrink/quantize"
)

// recipeHelp documents the recipe grammar in compare's --help.
const recipeHelp = `A recipe says how a variant is made from BASE:
  f32                  BASE as it is (always in the table, as "base")
  q8_0, q4_0, q4_1     round-to-nearest blocks with shrink quantize's defaults
                       (every matrix in the scheme; with a 4-bit scheme the
                       output head in Q8_0)
  SCHEME:METHOD        a quantization method: q4_0:rtn, q4_0:gptq, int4:gptq
                       (SCHEME: q8_0, q4_0, q4_1, int8, int4; METHOD: rtn, gptq)
  prune:METHOD:SPARSITY  unstructured pruning of that fraction of the weights:
                       prune:magnitude:0.5, prune:wanda:0.5 (METHOD: magnitude,
                       wanda, sparsegpt)
  prune:N:M            N of every M weights zeroed: prune:2:4
  STEP+STEP            steps in order, pruning before quantization:
                       prune:2:4+q8_0
Today shrink builds q8_0, q4_0 and q4_1 with rtn; the other recipes are
understood but stop with "not available yet".`

// Step kinds.
const (
	stepAsIs  = "as-is"
	stepQuant = "quantize"
	stepPrune = "prune"
)

// The names a recipe understands.
var (
	recipeSchemes      = []string{"q8_0", "q4_0", "q4_1", "int8", "int4"}
	recipeQuantMethods = []string{"rtn", "gptq"}
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
		if len(f) != 3 {
			return st, fmt.Errorf("%q: want prune:METHOD:SPARSITY (prune:wanda:0.5) or prune:N:M (prune:2:4)", s)
		}
		if n, err := strconv.Atoi(f[1]); err == nil {
			m, err := strconv.Atoi(f[2])
			if err != nil || n < 1 || m <= n {
				return st, fmt.Errorf("%q: N:M wants whole numbers with 0 < N < M, such as 2:4", s)
			}
			st.n, st.m = n, m
			return st, nil
		}
		if !slices.Contains(recipePruneMethods, f[1]) {
			return st, fmt.Errorf("%q: unknown pruning method %q: want %s, or N:M", s, f[1], strings.Join(recipePruneMethods, ", "))
		}
		sp, err := strconv.ParseFloat(f[2], 64)
		if err != nil || !(sp > 0 && sp < 1) {
			return st, fmt.Errorf("%q: sparsity %q: want the fraction of weights to remove, between 0 and 1 (0.5)", s, f[2])
		}
		st.method, st.sparsity = f[1], sp
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

// buildVariant makes the model recipe r describes from base (which must stay
// open while the result is used). Each step that the library cannot do yet
// stops here: extend the switch as methods land.
func buildVariant(base *model.Model, r recipe, threads int) (*model.Model, error) {
	m := base
	for _, s := range r.steps {
		switch {
		case s.kind == stepAsIs:
		case s.kind == stepQuant && s.method == string(quantize.RTN) && quantize.Scheme(s.scheme).Block():
			q, _, err := quantize.Quantize(m, quantize.Options{Scheme: quantize.Scheme(s.scheme), Threads: threads})
			if err != nil {
				return nil, fmt.Errorf("recipe %q: %w", r, err)
			}
			m = q
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
		return fmt.Sprintf("%d:%d pruning", s.n, s.m)
	case s.kind == stepPrune:
		return fmt.Sprintf("%s pruning to %g sparsity", s.method, s.sparsity)
	}
	return s.text
}
