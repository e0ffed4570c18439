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
	)
	cmd := &cobra.Command{
		Use:   "finetune MODEL OUT",
		Short: "Fine-tune a pruned MLP classifier on Fashion-MNIST with its zeros held fixed",
		Long: `finetune trains an MLP classifier, typically one that prune has zeroed, on
Fashion-MNIST without growing its pruned weights back: every weight of a weight
matrix that is zero in MODEL is masked, and it stays zero, with its AdamW
moments, for the whole run (the biases all train). A masked weight's gradient
does not count towards the clipping norm. This is the recovery step after
one-shot pruning; prune --gradual prunes and recovers in one run.

The training runs as train's does (AdamW, warm-up then cosine decay,
clipping, --val images held out, the same bytes for a --seed and --threads),
for --epochs passes or --steps steps. --teacher T adds distillation from a
classifier's soft targets to the labels' loss, as distill does (--temperature,
--alpha); the dense model MODEL was pruned from is the usual teacher.

The report gives the test accuracy of MODEL and of OUT, and the sparsity of
each weight matrix of OUT, which is MODEL's. OUT is a Hugging Face folder that
stores its sparse matrices in compressed-tensors' layouts unless --dense; it
is written atomically, replaced only with --force, and may never be MODEL.`,
		Example: `  shrink prune ./fmnist-teacher ./pruned --sparsity 0.9 && shrink finetune ./pruned ./recovered
  shrink finetune ./pruned ./recovered --epochs 10 --teacher ./fmnist-teacher
  shrink finetune ./pruned ./quick --steps 200 --limit 5000 --val 1000 --json`,
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
			kind, err := format.ParseOutputKind("", dst)
			if err != nil {
				return err
			}
			if err := checkOut(dst, force); err != nil {
				return err
			}
			r := recoveryRun{command: "finetune", src: src, dst: dst, kind: kind, force: force, dense: dense,
				lopts: lopts, td: td, opts: opts, teacherPath: teacherPath}
			return r.run(cmd, g)
		},
	}
	f := cmd.Flags()
	f.StringVar(&teacherPath, "teacher", "", "also learn from this MLP classifier's soft targets")
	f.Float64Var(&opts.Temperature, "temperature", opts.Temperature, "softmax temperature of the teacher's soft targets")
	f.Float64Var(&opts.Alpha, "alpha", opts.Alpha, "weight of the distillation term (1-alpha weighs the labels)")
	addTrainFlags(cmd, &opts, &td)
	f.IntVar(&opts.Epochs, "epochs", 5, "passes over the training images (ignored with --steps)")
	f.Lookup("seed").Usage = "seeds the order of the examples"
	f.BoolVar(&dense, "dense", false, "store the zeros densely (default: compressed-tensors sparse layouts)")
	f.BoolVar(&force, "force", false, "replace OUT if it exists")
	f.BoolVar(&g.json, "json", false, "print the summary as JSON")
	f.StringVar(&lopts.Arch, "arch", "", `architecture of a bare state dict ("mlp")`)
	return cmd
}
