package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// interrupted is what afterTrainStep panics with to stop train as a crash
// would.
type interrupted struct{}

// shrinkStopped runs the command line and stops it after training step stop.
func shrinkStopped(t *testing.T, stop int, args ...string) {
	t.Helper()
	afterTrainStep = func(step int) {
		if step == stop {
			panic(interrupted{})
		}
	}
	defer func() {
		afterTrainStep = nil
		if r := recover(); r == nil {
			t.Fatalf("shrink %s was not interrupted", strings.Join(args, " "))
		} else if _, ok := r.(interrupted); !ok {
			panic(r)
		}
	}()
	shrink(t, args...)
}

// TestTrainResume interrupts train for both architectures, resumes it from
// its checkpoint, and wants the bytes of an uninterrupted run; a resume with
// another batch is refused, naming the file and the flag.
func TestTrainResume(t *testing.T) {
	dir := t.TempDir()
	data := fakeFashion(t, 400, 50)
	text := lmText(t, dir, 600, 1)
	for _, c := range []struct {
		name string
		args []string
		out  string // the file compared, inside OUT when OUT is a folder
	}{
		{"mlp", []string{"train", "--hidden", "16", "--data", data, "--val", "100", "--steps", "12", "--batch", "30",
			"--lr", "1e-2", "--seed", "3", "--threads", "2", "--quiet"}, "model.safetensors"},
		{"llama", []string{"train", "--arch", "llama", "--text", text, "--vocab", "280", "--dim", "16", "--layers", "1",
			"--heads", "2", "--kv-heads", "1", "--hidden", "24", "--ctx", "16", "--steps", "12", "--batch", "3",
			"--threads", "2", "--seed", "3", "--quiet"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			name := func(s string) string {
				if c.out == "" {
					return filepath.Join(dir, c.name+s+".gguf")
				}
				return filepath.Join(dir, c.name+s)
			}
			read := func(out string) []byte {
				b, err := os.ReadFile(filepath.Join(out, c.out))
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
			ck := filepath.Join(dir, c.name+".ckpt")
			mustShrink(t, append(c.args, name("-whole"))...)
			shrinkStopped(t, 8, append(c.args, name("-resumed"), "--checkpoint", ck, "--checkpoint-every", "5")...)
			if _, err := os.Stat(name("-resumed")); err == nil {
				t.Fatal("the interrupted run wrote its model")
			}
			bad := append([]string(nil), c.args...)
			bad[slices.Index(bad, "--batch")+1] = "2"
			if _, errOut, code := shrink(t, append(bad, name("-bad"), "--resume", ck)...); code != 2 ||
				!strings.Contains(errOut, ck) || !strings.Contains(errOut, "batch is") {
				t.Errorf("resume with another batch: exit %d, %s", code, errOut)
			}
			mustShrink(t, append(c.args, name("-resumed"), "--checkpoint", ck, "--resume", ck)...)
			if !bytes.Equal(read(name("-whole")), read(name("-resumed"))) {
				t.Error("the resumed run wrote other bytes than the uninterrupted one")
			}
		})
	}
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--checkpoint-every", "5"}, "--checkpoint-every applies to --checkpoint"},
		{[]string{"--checkpoint", filepath.Join(dir, "none", "c.ckpt")}, "does not exist"},
		{[]string{"--checkpoint", filepath.Join(dir, "c.ckpt"), "--checkpoint-every", "-1"}, "--checkpoint-every -1"},
		{[]string{"--resume", filepath.Join(dir, "none.ckpt")}, "none.ckpt"},
	} {
		_, errOut, code := shrink(t, append([]string{"train", filepath.Join(dir, "out"), "--data", data}, c.args...)...)
		if code != 2 || !strings.Contains(errOut, c.msg) {
			t.Errorf("train %v: exit %d, %q; want exit 2 naming %q", c.args, code, errOut, c.msg)
		}
	}
}

// TestRecoveryResume interrupts prune --gradual and finetune, for an mlp
// classifier and a llama model, and resumes each from its checkpoint: the
// resumed run must write the bytes of an uninterrupted one. The interruption
// falls after a pruning step of the schedule, so the masks come back from
// the checkpoint too.
func TestRecoveryResume(t *testing.T) {
	dir := t.TempDir()
	data := fakeFashion(t, 400, 50)
	text := lmText(t, dir, 600, 1)
	mlp := filepath.Join(dir, "mlp")
	mustShrink(t, "train", "--hidden", "16", "--data", data, "--val", "100", "--steps", "4", "--batch", "30", "--seed", "3", "-q", mlp)
	llama := filepath.Join(dir, "llama.gguf")
	mustShrink(t, "train", "--arch", "llama", "--text", text, "--vocab", "280", "--dim", "16", "--layers", "1", "--heads", "2",
		"--kv-heads", "1", "--hidden", "24", "--ctx", "16", "--steps", "4", "--batch", "3", "--seed", "3", "-q", llama)
	mlpPruned, llamaPruned := filepath.Join(dir, "mlp-pruned"), filepath.Join(dir, "llama-pruned.gguf")
	mustShrink(t, "prune", mlp, mlpPruned, "--sparsity", "0.5", "-q")
	mustShrink(t, "prune", llama, llamaPruned, "--sparsity", "0.5", "-q")

	mlpTrain := []string{"--data", data, "--val", "100", "--steps", "12", "--batch", "30", "--seed", "3", "--threads", "2", "-q"}
	lmTrain := []string{"--text", text, "--ctx", "16", "--steps", "12", "--batch", "3", "--seed", "3", "--threads", "2", "-q"}
	gradual := []string{"--gradual", "--sparsity", "0.6", "--ramp-start", "0", "--ramp-end", "0.75", "--prune-every", "3"}
	for _, c := range []struct {
		name string
		args []string
		file string // the file compared, inside the output folder; "" for a .gguf output
	}{
		{"prune-gradual-mlp", append(append([]string{"prune", mlp}, gradual...), mlpTrain...), "model.safetensors"},
		{"prune-gradual-llama", append(append([]string{"prune", llama}, gradual...), lmTrain...), ""},
		{"finetune-mlp", append([]string{"finetune", mlpPruned}, mlpTrain...), "model.safetensors"},
		{"finetune-llama", append([]string{"finetune", llamaPruned}, lmTrain...), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := func(s string) string {
				if c.file == "" {
					return filepath.Join(dir, c.name+s+".gguf")
				}
				return filepath.Join(dir, c.name+s)
			}
			read := func(p string) []byte {
				b, err := os.ReadFile(filepath.Join(p, c.file))
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
			ck := filepath.Join(dir, c.name+".ckpt")
			// The source comes first, the destination second, then the flags.
			args := func(dst string, more ...string) []string {
				return append(append([]string{c.args[0], c.args[1], dst}, c.args[2:]...), more...)
			}
			mustShrink(t, args(out("-whole"))...)
			shrinkStopped(t, 7, args(out("-resumed"), "--checkpoint", ck, "--checkpoint-every", "5")...)
			if _, err := os.Stat(out("-resumed")); err == nil {
				t.Fatal("the interrupted run wrote its model")
			}
			mustShrink(t, args(out("-resumed"), "--checkpoint", ck, "--resume", ck)...)
			if !bytes.Equal(read(out("-whole")), read(out("-resumed"))) {
				t.Error("the resumed run wrote other bytes than the uninterrupted one")
			}
		})
	}
	// Checkpoints belong to training runs: one-shot pruning refuses them.
	if _, errOut, code := shrink(t, "prune", mlp, filepath.Join(dir, "x"), "--sparsity", "0.5", "--checkpoint", filepath.Join(dir, "c.ckpt")); code != 2 ||
		!strings.Contains(errOut, "--checkpoint applies to --gradual only") {
		t.Errorf("prune --checkpoint without --gradual: exit %d, %q", code, errOut)
	}
	if _, errOut, code := shrink(t, "finetune", mlpPruned, filepath.Join(dir, "y"), "--data", data, "--resume", filepath.Join(dir, "none.ckpt")); code != 2 ||
		!strings.Contains(errOut, "none.ckpt") {
		t.Errorf("finetune --resume of a missing file: exit %d, %q", code, errOut)
	}
}
