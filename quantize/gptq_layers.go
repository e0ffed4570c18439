package quantize

import (
	"fmt"
	"runtime/debug"
	"slices"
	"sync"

	"github.com/shrinkml/shrink/inference"
	"github.com/shrinkml/shrink/internal/calib"
	"github.com/shrinkml/shrink/model"
)

var linearGroups = []inference.LinearGroup{inference.GroupQKV, inference.GroupO, inference.GroupGateUp, inference.GroupDown}

// runGPTQ fills in the plans of m's tensors: GPTQ for the decoder layers'
// matrices planned as Quantized, run's RTN (or conversion) for the rest.
//
// The layers go one at a time through an inference.Calibration over
// opts.Calibration: a pass observes the layer's inputs and accumulates one
// Hessian per linear group, the group's matrices are quantized (q, k and v
// share a Hessian, as do gate and up), the engine takes the quantized
// matrices, and a second pass moves the hidden states on, so the next layer
// is fitted to the inputs the quantized model gives it. Memory stays at the
// hidden states plus one layer's Hessians. After the last layer an untied
// output head planned as Quantized gets GPTQ too, on the final norm's output
// of the quantized layers (not under plain AWQ, which rounds by RTN). The
// embedding (and a tied head, which is the embedding) keeps RTN; the engine
// runs with it (and any fallback or converted matrix) as stored, so the
// calibration sees the model as it will be.
//
// With AWQ (opts.Method AWQ or AWQGPTQ) the same pass also gathers each
// group's mean input magnitudes; each layer's scales are searched and folded
// in (awqLayer) before its matrices are rounded, by RTN under AWQ and by GPTQ
// on the scaled inputs' Hessians under AWQGPTQ. The chosen scales are
// appended to awq.
func runGPTQ(m *model.Model, plans []tensorPlan, opts *Options, threads int, awq *[]AWQGroup) error {
	damp := opts.Damp
	if damp == 0 {
		damp = calib.DefaultDamp
	}
	index := map[string]int{}
	for i, t := range m.Tensors {
		index[t.Name] = i
	}
	type member struct {
		tensor int
		group  inference.LinearGroup
	}
	byLayer := make([][]member, m.Config.NumLayers)
	var total int64
	for li := range byLayer {
		for _, g := range linearGroups {
			for _, short := range g.Tensors() {
				i, ok := index[model.LayerTensor(li, short)]
				if ok && plans[i].action == Quantized {
					plans[i].gptq = true
					byLayer[li] = append(byLayer[li], member{i, g})
					total += int64(m.Tensors[i].Elems())
				}
			}
		}
	}
	if opts.Method == AWQGPTQ {
		total *= 2 // the scale search, then GPTQ
	}
	head := -1 // the untied head's tensor index, when GPTQ quantizes it
	if i, ok := index[model.OutputHead]; ok && plans[i].action == Quantized && opts.Method != AWQ {
		head = i
		plans[i].gptq = true
		total += int64(m.Tensors[i].Elems())
	}
	if err := run(m.Tensors, plans, threads, nil); err != nil {
		return err
	}
	cur := &model.Model{Config: m.Config, Tokenizer: m.Tokenizer, Source: m.Source, Metadata: m.Metadata,
		Tensors: slices.Clone(m.Tensors)}
	for i, p := range plans {
		if p.action != Kept && !p.gptq {
			t := m.Tensors[i]
			cur.Tensors[i] = &model.Tensor{Name: t.Name, DType: p.to, Shape: t.Shape, Data: p.data}
		}
	}
	l, err := inference.NewLlama(cur, inference.Options{Threads: threads})
	if err != nil {
		return fmt.Errorf("gptq: %w", err)
	}
	defer l.Close()
	c, err := l.NewCalibration(opts.Calibration)
	if err != nil {
		return fmt.Errorf("gptq: %w", err)
	}
	var done int64
	var progressMu sync.Mutex
	advance := func(n int64) {
		if opts.Progress != nil {
			progressMu.Lock()
			done += n
			opts.Progress(done, total)
			progressMu.Unlock()
		}
	}
	// quantizeMembers runs GPTQ on members, the matrices of one decoder
	// layer (or the head) planned for it, from their groups' Hessians
	// (emptied once factored), AWQ's scales and scaled sources when given,
	// and hands the results to the engine; where names them in errors.
	quantizeMembers := func(where string, members []member, hessians map[inference.LinearGroup]*calib.Hessian,
		scales map[inference.LinearGroup][]float64, src map[int]*model.Tensor) error {
		type factor struct {
			f     *calib.InverseFactor
			perm  []int
			hdiag []float64 // H's diagonal in column order, for the scale search
			err   error
		}
		factors := map[inference.LinearGroup]*factor{}
		var wg sync.WaitGroup
		sem := make(chan struct{}, threads)
		for g, h := range hessians {
			fc := &factor{}
			factors[g] = fc
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				H := h.Sym()
				if s := scales[g]; s != nil {
					scaleHessian(H, s) // the inputs of the scaled matrices are x/s
				}
				if !opts.AbsmaxScales {
					fc.hdiag = make([]float64, H.SymmetricDim())
					for j := range fc.hdiag {
						fc.hdiag[j] = H.At(j, j)
					}
				}
				if opts.ActOrder {
					fc.perm = calib.ActOrder(H)
					H = calib.Permute(H, fc.perm)
				}
				if fc.f, fc.err = calib.InverseCholesky(H, damp); fc.err != nil {
					fc.err = fmt.Errorf("gptq: %s, %s inputs: %w", where, g, fc.err)
				}
			})
		}
		wg.Wait()
		clear(hessians) // the Hessians are no longer needed: let the collector have them
		var mats []*gptqMatrix
		type job struct{ mat, r0, rows int }
		var jobs []job
		for _, mb := range members {
			fc := factors[mb.group]
			if fc == nil {
				return fmt.Errorf("gptq: %s: the calibration showed no %s inputs", where, mb.group)
			}
			if fc.err != nil {
				return fc.err
			}
			t, p := m.Tensors[mb.tensor], &plans[mb.tensor]
			if st := src[mb.tensor]; st != nil {
				t = st
			}
			size, err := model.ByteSize(p.to, t.Shape)
			if err != nil {
				return fmt.Errorf("tensor %q: %w", t.Name, err)
			}
			p.data, p.damp = make([]byte, size), fc.f.Damp
			sc := schemeOf(p.to)
			mats = append(mats, newGPTQMatrix(t, p, sc, fc.f, fc.perm, fc.hdiag))
			for r := 0; r < t.Rows(); r += gptqRows {
				jobs = append(jobs, job{len(mats) - 1, r, min(gptqRows, t.Rows()-r)})
			}
		}
		errs := make([]error, len(jobs))
		sums := make([][2]float64, len(jobs))
		var mu sync.Mutex // guards done and the progress calls
		runJobs(threads, len(jobs), func() func(j int) {
			var s gptqScratch
			return func(j int) {
				jb := jobs[j]
				g := mats[jb.mat]
				errs[j] = g.quantizeRows(jb.r0, jb.rows, &s, &sums[j])
				if opts.Progress != nil {
					mu.Lock()
					done += int64(jb.rows * g.t.Cols())
					opts.Progress(done, total)
					mu.Unlock()
				}
			}
		})
		for j, err := range errs {
			if err != nil {
				return err
			}
			p := mats[jobs[j].mat].p
			p.sumErr += sums[j][0]
			p.sumSq += sums[j][1]
		}
		for _, g := range mats {
			q := &model.Tensor{Name: g.t.Name, DType: g.p.to, Shape: g.t.Shape, Data: g.p.data}
			if err := l.SetWeights(g.t.Name, q); err != nil {
				return fmt.Errorf("gptq: %w", err)
			}
		}
		return nil
	}
	for li, members := range byLayer {
		if len(members) == 0 {
			if err := c.Run(nil, true); err != nil {
				return fmt.Errorf("gptq: layer %d: %w", li, err)
			}
			continue
		}
		coll := calib.NewLayer(threads)
		coll.Groups = map[inference.LinearGroup]bool{}
		for _, mb := range members {
			coll.Groups[mb.group] = true
		}
		observe := coll.Observe
		var stats *awqStats
		if opts.Method.usesAWQ() {
			stats = newAWQStats()
			observe = func(in inference.Input) { coll.Observe(in); stats.observe(in) }
		}
		if err := c.Run(observe, false); err != nil {
			return fmt.Errorf("gptq: layer %d: %w", li, err)
		}
		src := map[int]*model.Tensor{} // the members AWQ scaled, by tensor index
		var scales map[inference.LinearGroup][]float64
		if stats != nil {
			var groups []AWQGroup
			var err error
			if src, scales, groups, err = awqLayer(m, plans, index, li, coll.Hessians, stats, l, threads, advance); err != nil {
				return err
			}
			*awq = append(*awq, groups...)
			if opts.Method == AWQ {
				idx := make([]int, len(members))
				for k, mb := range members {
					idx[k] = mb.tensor
				}
				if err := rtnMatrices(m, plans, idx, src, threads); err != nil {
					return err
				}
				for _, i := range idx {
					t := m.Tensors[i]
					if err := l.SetWeights(t.Name, &model.Tensor{Name: t.Name, DType: plans[i].to, Shape: t.Shape, Data: plans[i].data}); err != nil {
						return fmt.Errorf("awq: %w", err)
					}
				}
				debug.FreeOSMemory()
				if err := c.Run(nil, true); err != nil {
					return fmt.Errorf("awq: layer %d: %w", li, err)
				}
				continue
			}
		}
		err := quantizeMembers(fmt.Sprintf("layer %d", li), members, coll.Hessians, scales, src)
		coll = nil
		if err != nil {
			return err
		}
		// The layer's Hessians and factors are garbage now, as large as the
		// rest of the working set: collect them before the next layer's are
		// made, so the peak stays at the hidden states plus one layer's work
		// rather than growing with the collector's headroom.
		debug.FreeOSMemory()
		if err := c.Run(nil, true); err != nil {
			return fmt.Errorf("gptq: layer %d: %w", li, err)
		}
	}
	if head >= 0 {
		coll := calib.NewLayer(threads)
		coll.Groups = map[inference.LinearGroup]bool{inference.GroupHead: true}
		if err := c.Head(coll.Observe); err != nil {
			return fmt.Errorf("gptq: the head: %w", err)
		}
		if err := quantizeMembers("the head", []member{{head, inference.GroupHead}}, coll.Hessians, nil, nil); err != nil {
			return err
		}
	}
	return nil
}

// schemeOf is the block scheme that stores as d.
func schemeOf(d model.DType) Scheme {
	if d == model.Int8Ch {
		return Int8
	}
	if _, _, ok := Int4Layout(d); ok {
		return Int4
	}
	for s, sd := range schemeDTypes {
		if sd == d && s.Block() {
			return s
		}
	}
	return ""
}
