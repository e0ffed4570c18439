package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/shrinkml/shrink/evalsuite"
	"github.com/shrinkml/shrink/format"
	"github.com/shrinkml/shrink/format/idx"
	"github.com/shrinkml/shrink/inference"
	"github.com/shrinkml/shrink/internal/progress"
	"github.com/shrinkml/shrink/model"
)

// compareClassifiers is compare --dataset: every variant of an MLP
// classifier scored on the data set's test images, with the base as the
// reference its predictions are compared with.
func compareClassifiers(cfg compareConfig) (*evalsuite.Report, error) {
	test, _, err := loadPart(cfg.data, idx.Test)
	if err != nil {
		return nil, err
	}
	loadStart := time.Now()
	base, _, err := format.Load(cfg.base, cfg.lopts)
	if err != nil {
		return nil, err
	}
	defer base.Close()
	ref, err := classifierFor(base, cfg.base, cfg.threads, test)
	if err != nil {
		return nil, err
	}
	defer ref.Close()
	baseLoad := time.Since(loadStart).Seconds()

	specs := variantSpecs(cfg)
	tmp, err := os.MkdirTemp("", "shrink-compare-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	build := variantBuild{threads: cfg.threads, calib: func() ([][]int, error) {
		return nil, fmt.Errorf("gptq, awq, wanda and sparsegpt calibrate a language model on text; compare a classifier with rtn and magnitude recipes (q8_0, prune:magnitude:0.5, prune:magnitude:2:4)")
	}}
	variants := make([]evalsuite.Variant, len(specs))
	files := make([]string, len(specs))
	for i, s := range specs {
		v := evalsuite.Variant{Name: s.name, Base: s.base}
		m, dir := base, filepath.Join(tmp, fmt.Sprintf("variant-%03d", i))
		switch {
		case s.base:
			v.Recipe = s.recipe.text
		case s.built != nil:
			m, v.Recipe, files[i] = s.built, s.how, dir
		case s.recipe != nil:
			v.Recipe = s.recipe.text
			if m, err = buildVariant(base, *s.recipe, build); err != nil {
				return nil, err
			}
			files[i] = dir
		default:
			v.Model, files[i] = s.path, s.path
			if m, _, err = format.Load(s.path, cfg.lopts); err != nil {
				return nil, err
			}
			defer m.Close()
			if m.Config.Arch != "mlp" {
				return nil, fmt.Errorf("%s: compare --dataset needs an mlp classifier, not %q", s.path, m.Config.Arch)
			}
		}
		// Every variant is measured as a Hugging Face folder, the base too,
		// with sparse matrices in compressed-tensors' bitmask layout.
		if err := format.Save(cfg.base, dir, m, format.SaveOptions{To: format.HF, Sparse: true}); err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		if v.SizeBytes, err = format.DiskBytes(dir); err != nil {
			return nil, err
		}
		v.Params = m.Parameters()
		if v.Params > 0 {
			v.BitsPerWeight = 8 * float64(m.TensorBytes()) / float64(v.Params)
		}
		variants[i] = v
	}
	variants[0].LoadSeconds = baseLoad

	rep := &evalsuite.Report{SchemaVersion: evalsuite.ReportSchemaVersion, Base: cfg.base, Dataset: cfg.dataset,
		TestExamples: test.N, Threads: ref.Threads()}
	x, y := test.Features(), test.Classes()
	for i := range variants {
		v := &variants[i]
		c, where := ref, cfg.base
		if files[i] != "" {
			where = v.Name
			start := time.Now()
			m, _, err := format.Load(files[i], cfg.lopts)
			if err != nil {
				return nil, err
			}
			defer m.Close()
			if c, err = classifierFor(m, files[i], cfg.threads, test); err != nil {
				return nil, err
			}
			defer c.Close()
			v.LoadSeconds = time.Since(start).Seconds()
		}
		label := fmt.Sprintf("[%d/%d] %s", i+1, len(specs), v.Name)
		bar := progress.New(label, int64(test.N), "examples", cfg.quiet)
		r, err := evalsuite.Classify(c, x, y, evalsuite.ClassifyOptions{OnBatch: func(n int) { bar.Add(int64(n)) }}, ref)
		bar.Finish()
		if err != nil {
			return nil, fmt.Errorf("%s on %s: %w", where, cfg.dataset, err)
		}
		acc := r.Accuracy
		v.Accuracy, v.Top1Agreement = &acc, r.Ref.Agreement
		if v.ExamplesPerS, err = classifierSpeed(c, x); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
	}
	rep.Variants = variants
	rep.Relate()
	return rep, nil
}

// classifierFor prepares the classifier m, read from path, for the test images.
func classifierFor(m *model.Model, path string, threads int, test *idx.Images) (*inference.MLP, error) {
	if m.Config.Arch != "mlp" {
		return nil, fmt.Errorf("%s: compare --dataset scores an mlp classifier, not %q (compare a language model with --text)", path, m.Config.Arch)
	}
	c, err := inference.NewMLP(m, inference.Options{Threads: threads})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if c.Inputs() != test.Rows*test.Cols || c.Classes() != len(idx.FashionMNISTClasses) {
		c.Close()
		return nil, fmt.Errorf("%s: the model maps %d features to %d classes; Fashion-MNIST has %d pixels and %d classes",
			path, c.Inputs(), c.Classes(), test.Rows*test.Cols, len(idx.FashionMNISTClasses))
	}
	return c, nil
}

// variantSpecs lists the rows cfg asks for: the base, each recipe, each model file.
func variantSpecs(cfg compareConfig) []variantSpec {
	specs := []variantSpec{{name: "base", recipe: &recipe{text: "f32", steps: []recipeStep{{kind: stepAsIs, text: "f32"}}}, path: cfg.base, base: true}}
	names := map[string]bool{"base": true}
	for i := range cfg.recipes {
		if cfg.recipes[i].asIs() {
			continue // the base is always there
		}
		specs = append(specs, variantSpec{name: cfg.recipes[i].text, recipe: &cfg.recipes[i]})
		names[cfg.recipes[i].text] = true
	}
	for _, p := range cfg.models {
		name := strings.TrimSuffix(filepath.Base(p), filepath.Ext(p))
		if names[name] {
			name = p
		}
		names[name] = true
		specs = append(specs, variantSpec{name: name, path: p})
	}
	return append(specs, cfg.extra...)
}

// classifierSpeed is c's median rate over passes through the examples x in
// batches of 1000: at least decodeRepeats passes, and as many more as fill
// decodeMinTime, as a single pass of a small model is mostly timer noise.
func classifierSpeed(c *inference.MLP, x []float32) (float64, error) {
	const batch = 1000
	in := c.Inputs()
	n := len(x) / in
	var rates []float64
	var spent float64
	for len(rates) < decodeRepeats || (spent < decodeMinTime && len(rates) < 301) {
		start := time.Now()
		for s := 0; s < n; s += batch {
			if _, err := c.Predict(x[s*in : min(s+batch, n)*in]); err != nil {
				return 0, err
			}
		}
		d := time.Since(start).Seconds()
		spent += d
		rates = append(rates, float64(n)/d)
	}
	slices.Sort(rates)
	return rates[len(rates)/2], nil
}
