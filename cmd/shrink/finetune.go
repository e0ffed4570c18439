package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/shrinkml/shrink/distill/train"
	"github.com/shrinkml/shrink/format"
)

func newFinetuneCmd(g *globalFlags) *cobra.Command {
	var (
		teacherPath  string
		td           trainData
		opts         = train.DefaultOptions()
		dense, force bool
		lopts        format.LoadOptions
		lf           lmRecoveryFlags
	)
	cmd := &cobra.Command{
		Use:   "finetune MODEL OUT",
		Short: "Fine-tune a pruned model (an MLP on Fashion-MNIST, a llama model on text) with its zeros held fixed",
		Long: `finetune trains an MLP classifier on Fashion-MNIST, or a llama-family model
on the text of --text, typically one that prune has zeroed, without growing
its pruned weights back: every weight of a weight matrix (of an MLP; of the
q, k, v, o, gate, up and down matrices of a llama model) that is zero in MODEL
is masked, and it stays zero, with its AdamW moments, for the whole run (the
biases, norms and embeddings all train). A masked weight's gradient does not
count towards the clipping norm. This is the recovery step after one-shot
pruning; prune --gradual prunes and recovers in one run.

The training runs as train's does (AdamW, warm-up then cosine decay,
clipping, --val images held out, the same bytes for a --seed and --threads),
for --epochs passes or --steps steps. --teacher T adds distillation from a
classifier's soft targets to the labels' loss, as distill does (--temperature,
--alpha); the dense model MODEL was pruned from is the usual teacher.

The report gives the test accuracy of MODEL and of OUT, and the sparsity of
each weight matrix of OUT, which is MODEL's. OUT is a Hugging Face folder that
stores its sparse matrices in compressed-tensors' layouts unless --dense; it
is written atomically, replaced only with --force, and may never be MODEL.

For a llama model, --text FILE is tokenized with the model's tokenizer and
held out as train --arch llama does (--heldout FILE, or the lines that begin
in the last 10% of --text's bytes); each of --steps steps (default 500) draws
--batch windows (default 16) of --ctx tokens (default 128) that start with
BOS. Unless set, --lr is 3e-3, --weight-decay 0.1, --warmup 0.05, and
--teacher's --temperature 1 and --alpha 0.5; the teacher must be a llama
model with MODEL's vocabulary. The report gives the held-out perplexity of
MODEL, of the teacher, and of OUT, with the sparsity of every layer's
matrices. OUT is a .gguf file or a Hugging Face folder (sparse unless
--dense). --data, --val, --limit and --epochs are refused for a llama model,
--text, --heldout and --ctx for an mlp. --checkpoint, --checkpoint-every and
--resume work as train's: an interrupted run resumed from its checkpoint with
the same flags writes the same bytes.`,
		Example: `  shrink prune ./fmnist-teacher ./pruned --sparsity 0.9 && shrink finetune ./pruned ./recovered
  shrink finetune ./pruned ./recovered --epochs 10 --teacher ./fmnist-teacher
  shrink finetune ./pruned ./quick --steps 200 --limit 5000 --val 1000 --json
  shrink finetune stories-70-oneshot.gguf stories-70-ft.gguf --text tinystories.txt --teacher stories260K.bin`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, dst := args[0], args[1]
			if teacherPath == "" && (cmd.Flags().Changed("temperature") || cmd.Flags().Changed("alpha")) {
				return fmt.Errorf("--temperature and --alpha weigh --teacher's soft targets; give --teacher")
			}
			if err := checkSoftTargets(&opts); err != nil {
				return err
			}
			if err := checkTrainFlags(&opts, "", td); err != nil {
				return err
			}
			if err := checkCheckpointFlags(cmd.Flags().Changed("checkpoint-every"), &opts); err != nil {
				return err
			}
			kind, err := format.ParseOutputKind("", dst)
			if err != nil {
				return err
			}
			if err := checkOut(dst, force); err != nil {
				return err
			}
			r := recoveryRun{command: "finetune", src: src, dst: dst, kind: kind, force: force, dense: dense,
				lopts: lopts, td: td, opts: opts, teacherPath: teacherPath, lf: lf}
			return r.run(cmd, g)
		},
	}
	f := cmd.Flags()
	f.StringVar(&teacherPath, "teacher", "", "also learn from this model's soft targets (an MLP classifier, or a llama model for a llama MODEL)")
	f.Float64Var(&opts.Temperature, "temperature", opts.Temperature, "softmax temperature of the teacher's soft targets")
	f.Float64Var(&opts.Alpha, "alpha", opts.Alpha, "weight of the distillation term (1-alpha weighs the labels)")
	addTrainFlags(cmd, &opts, &td)
	addCheckpointFlags(cmd, &opts)
	f.IntVar(&opts.Epochs, "epochs", 5, "passes over the training images (ignored with --steps)")
	lf.add(cmd)
	f.Lookup("seed").Usage = "seeds the order of the examples"
	f.BoolVar(&dense, "dense", false, "store the zeros densely (default: compressed-tensors sparse layouts)")
	f.BoolVar(&force, "force", false, "replace OUT if it exists")
	f.BoolVar(&g.json, "json", false, "print the summary as JSON")
	f.StringVar(&lopts.Arch, "arch", "", `architecture of a bare state dict ("mlp")`)
	return cmd
}
