package distill

import (
	"fmt"
	"maps"

	"github.com/shrinkml/shrink/distill/lm"
	"github.com/shrinkml/shrink/model"
)

// LMRecoveryOptions set up GradualPruneLM and FinetuneLM.
type LMRecoveryOptions struct {
	// Train runs the training; GradualPruneLM takes its schedule from
	// Train.Prune. Its Teacher and TeacherLogits must be unset.
	Train lm.Options
	// Teacher, when set, adds distillation from its next-token distributions
	// to the next tokens' loss, weighed by Train.Temperature and Train.Alpha
	// as in DistillLM; the dense model is the usual teacher of its pruned self.
	Teacher *model.Model
}

// LMRecovery is a pruned llama-family model after its training.
type LMRecovery struct {
	// Model is the trained model in F32, with the source's config, RoPE
	// layout, tokenizer and metadata.
	Model *model.Model
	Train lm.Result
	// Masked is how many weights of the linear matrices were held at zero
	// from the start: the model's zeros.
	Masked int
	// Tensors are the linear matrices (q, k, v, o, gate, up and down of every
	// layer), TensorSparsity the share of zeros in each, and Sparsity the
	// share over all of them.
	Tensors        []string
	TensorSparsity []float64
	Sparsity       float64
}

// GradualPruneLM prunes the linear matrices of a llama-family model by
// magnitude on the schedule opts.Train.Prune while training it on the token
// stream tokens, then trains the steps left with the masks fixed (Zhu &
// Gupta, 2017). Each matrix gets the schedule's sparsity, or with
// Prune.Global one threshold is set over all of them; the embedding, the
// norms and the head are never pruned. Zeros the model already has stay zero.
func GradualPruneLM(m *model.Model, tokens []int, opts LMRecoveryOptions) (LMRecovery, error) {
	if opts.Train.Prune == nil {
		return LMRecovery{}, fmt.Errorf("prune %s: gradual pruning needs a schedule", m.Source)
	}
	return retrainLM(m, tokens, opts)
}

// FinetuneLM trains a pruned llama-family model on the token stream tokens
// with the zeros of its linear matrices held at zero, and their AdamW moments
// too, so that no pruned weight grows back.
func FinetuneLM(m *model.Model, tokens []int, opts LMRecoveryOptions) (LMRecovery, error) {
	return retrainLM(m, tokens, opts)
}

// retrainLM masks the zeros of m's linear matrices and trains it with opts.
func retrainLM(m *model.Model, tokens []int, opts LMRecoveryOptions) (LMRecovery, error) {
	if opts.Train.Teacher != nil || opts.Train.TeacherLogits != nil {
		return LMRecovery{}, fmt.Errorf("distill: the teacher is LMRecoveryOptions.Teacher, not a training option")
	}
	n, err := lm.FromModel(m)
	if err != nil {
		return LMRecovery{}, fmt.Errorf("%s: %w", m.Source, err)
	}
	o := opts.Train
	if opts.Teacher != nil {
		if o.Teacher, err = lm.FromModel(opts.Teacher); err != nil {
			return LMRecovery{}, fmt.Errorf("teacher %s: %w", opts.Teacher.Source, err)
		}
	}
	r := LMRecovery{Masked: n.MaskZeros()}
	if r.Train, err = lm.Train(n, tokens, o); err != nil {
		return LMRecovery{}, fmt.Errorf("%s: %w", m.Source, err)
	}
	r.Tensors = n.PrunableTensors()
	r.TensorSparsity, r.Sparsity = n.Sparsity()
	if r.Model, err = asSource(n, m); err != nil {
		return LMRecovery{}, err
	}
	return r, nil
}

// asSource returns the trained n as a model.Model shaped as src: its config
// (the Hugging Face class, the RoPE layout), tokenizer and metadata.
func asSource(n *lm.Model, src *model.Model) (*model.Model, error) {
	out := n.Model(src.Tokenizer)
	cfg := src.Config
	cfg.RopeLayout = out.Config.RopeLayout
	out.Config, out.Source = cfg, src.Source
	if src.Metadata != nil {
		out.Metadata = maps.Clone(src.Metadata)
	}
	out, err := out.WithRopeLayout(src.Config.RopeLayout)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src.Source, err)
	}
	if err := out.Validate(); err != nil {
		return nil, fmt.Errorf("%s: the trained model is inconsistent: %w", src.Source, err)
	}
	return out, nil
}
