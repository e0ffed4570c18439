package main

import (
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/shrinkml/shrink/evalsuite"
	"github.com/shrinkml/shrink/format"
	"github.com/shrinkml/shrink/format/idx"
	"github.com/shrinkml/shrink/inference"
	"github.com/shrinkml/shrink/internal/progress"
	"github.com/shrinkml/shrink/model"
)

// classEvalReport is eval --dataset's --json output. The comparison's keys
// (ref_accuracy, ref_agreement, accuracy_change_points) appear only with --ref.
type classEvalReport struct {
	SchemaVersion int      `json:"schema_version"`
	Model         string   `json:"model"`
	Dataset       string   `json:"dataset"`
	DataDir       string   `json:"data_dir"`
	Classes       []string `json:"classes"`
	evalsuite.Classification
	Params int64 `json:"params"`

	RefModel string `json:"ref_model,omitempty"`
	*evalsuite.ClassComparison

	Threads      int     `json:"threads"`
	Seconds      float64 `json:"seconds"`
	LoadSeconds  float64 `json:"load_seconds"`
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
}

// evalClassifier is eval --dataset: an MLP classifier's accuracy on the
// test images, and its agreement with a reference classifier.
func evalClassifier(cmd *cobra.Command, g *globalFlags, path, refPath, dataset, data string, threads int, lopts format.LoadOptions) error {
	if dataset == "" {
		return fmt.Errorf("--data %s: it names the data set's folder for --dataset; add --dataset %s", data, fashionMNIST)
	}
	if dataset != fashionMNIST {
		return fmt.Errorf("--dataset %q: want %s", dataset, fashionMNIST)
	}
	if threads < 0 {
		return fmt.Errorf("--threads %d must not be negative", threads)
	}
	test, dir, err := loadPart(data, idx.Test)
	if err != nil {
		return err
	}
	loadStart := time.Now()
	m, c, err := loadClassifier(path, lopts, threads, test)
	if err != nil {
		return err
	}
	loadSeconds := time.Since(loadStart).Seconds()
	defer m.Close()
	defer c.Close()
	var ref *inference.MLP
	if refPath != "" {
		rm, rc, err := loadClassifier(refPath, lopts, threads, test)
		if err != nil {
			return err
		}
		defer rm.Close()
		defer rc.Close()
		ref = rc
	}
	total := int64(test.N)
	bar := progress.New("eval", total, "examples", g.quiet)
	start := time.Now()
	r, err := evalsuite.Classify(c, test.Features(), test.Classes(), evalsuite.ClassifyOptions{OnBatch: func(n int) { bar.Add(int64(n)) }}, ref)
	bar.Finish()
	if err != nil {
		return fmt.Errorf("%s on %s: %w", path, dataset, err)
	}
	classes := idx.FashionMNISTClasses
	if l := m.Config.MLP.Labels; len(l) == len(classes) {
		classes = l
	}
	rep := classEvalReport{SchemaVersion: 1, Model: path, Dataset: dataset, DataDir: dir, Classes: classes,
		Classification: r, Params: m.Parameters(), Threads: threads, Seconds: time.Since(start).Seconds(),
		LoadSeconds: loadSeconds, PeakRSSBytes: evalsuite.PeakRSS()}
	if r.Ref != nil {
		rep.RefModel, rep.ClassComparison = refPath, r.Ref
	}
	if g.json {
		return writeJSON(cmd.OutOrStdout(), rep)
	}
	return writeClassEvalTable(cmd, rep)
}

// loadClassifier loads an MLP classifier for the test images.
func loadClassifier(path string, lopts format.LoadOptions, threads int, test *idx.Images) (*model.Model, *inference.MLP, error) {
	m, _, err := format.Load(path, lopts)
	if err != nil {
		return nil, nil, err
	}
	if m.Config.Arch != "mlp" {
		m.Close()
		return nil, nil, fmt.Errorf("%s: eval --dataset scores an mlp classifier, not %q (score a language model with --text)", path, m.Config.Arch)
	}
	c, err := inference.NewMLP(m, inference.Options{Threads: threads})
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	if c.Inputs() != test.Rows*test.Cols || c.Classes() != len(idx.FashionMNISTClasses) {
		c.Close()
		m.Close()
		return nil, nil, fmt.Errorf("%s: the model maps %d features to %d classes; Fashion-MNIST has %d pixels and %d classes",
			path, c.Inputs(), c.Classes(), test.Rows*test.Cols, len(idx.FashionMNISTClasses))
	}
	return m, c, nil
}

func writeClassEvalTable(cmd *cobra.Command, r classEvalReport) error {
	w := cmd.OutOrStdout()
	rows := [][]string{
		{"model", fmt.Sprintf("%s, %s parameters", filepath.Base(r.Model), commas(r.Params))},
		{"data", fmt.Sprintf("%s test set, %s images", r.Dataset, commas(int64(r.Examples)))},
		{"accuracy", fmt.Sprintf("%.2f%%", 100*r.Classification.Accuracy)},
	}
	if c := r.ClassComparison; c != nil {
		rows = append(rows,
			[]string{"reference", filepath.Base(r.RefModel)},
			[]string{"ref accuracy", fmt.Sprintf("%.2f%%", 100*c.Accuracy)},
			[]string{"accuracy change", fmt.Sprintf("%+.2f points", c.AccuracyChangePoints)},
			[]string{"agreement with ref", fmt.Sprintf("%.2f%%", 100*c.Agreement)},
		)
	}
	rows = append(rows, []string{"speed", fmt.Sprintf("%.0f examples/s; loading took %.3f s", r.ExamplesPerS, r.LoadSeconds)})
	if r.PeakRSSBytes > 0 {
		rows = append(rows, []string{"peak memory", humanBytes(r.PeakRSSBytes) + " resident"})
	}
	if err := writeTable(w, []string{"", "value"}, rows); err != nil {
		return err
	}
	// The confusion matrix, a row per true class, with each class's accuracy.
	headers := []string{"true \\ predicted"}
	right := []int{}
	for j := range r.Classes {
		headers = append(headers, strconv.Itoa(j))
		right = append(right, j+1)
	}
	headers = append(headers, "accuracy")
	right = append(right, len(r.Classes)+1)
	var conf [][]string
	for i, name := range r.Classes {
		row := []string{fmt.Sprintf("%d %s", i, name)}
		for _, v := range r.Confusion[i] {
			row = append(row, strconv.Itoa(v))
		}
		row = append(row, fmt.Sprintf("%.1f%%", 100*r.PerClassAccuracy[i]))
		conf = append(conf, row)
	}
	return writeTable(w, headers, conf, right...)
}
