// Command shrink loads, compresses, checks and exports language models and
// classifiers. Run `shrink --help` for the commands.
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/spf13/cobra"

	"github.com/shrinkml/shrink/inference"
)

// exitError carries the process exit status for an error: 1 for a regression
// found by a check, 2 for unusable input (the default for any error).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 2
}

// kvCacheFlag is a --kv-cache flag value: the engine's key/value cache type.
type kvCacheFlag struct{ kv *inference.KVCache }

func (f kvCacheFlag) String() string { return f.kv.String() }
func (f kvCacheFlag) Type() string   { return "f32|f16" }
func (f kvCacheFlag) Set(s string) error {
	k, err := inference.ParseKVCache(s)
	if err == nil {
		*f.kv = k
	}
	return err
}

// addKVCacheFlag gives cmd a --kv-cache flag that sets kv.
func addKVCacheFlag(cmd *cobra.Command, kv *inference.KVCache) {
	cmd.Flags().Var(kvCacheFlag{kv}, "kv-cache", "attention key/value cache: f32 (exact) or f16 (half the memory and\n"+
		"the bytes decode's attention reads; llama.cpp's default)")
}

// globalFlags are the flags every command shares.
type globalFlags struct {
	quiet      bool
	json       bool
	cpuProfile string
}

func newRootCmd() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:   "shrink",
		Short: "Compress language models and classifiers, and measure what it cost",
		Long: `shrink loads full-precision checkpoints (Hugging Face directories, GGUF,
llama2.c), compresses them, checks the result with its own CPU inference
engine, and exports files that llama.cpp, ollama and Hugging Face tools load.

Exit status: 0 on success, 1 when a check finds a regression, 2 on unusable
input or a failed command.`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.PersistentFlags().BoolVarP(&g.quiet, "quiet", "q", false, "no progress bars on stderr")
	root.PersistentFlags().StringVar(&g.cpuProfile, "cpuprofile", "", "write a CPU profile of the command to this file (go tool pprof reads it)")
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		if g.cpuProfile == "" {
			return nil
		}
		f, err := os.Create(g.cpuProfile)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		return nil // main stops the profile, which writes it to the unbuffered f
	}
	root.AddCommand(
		newInspectCmd(g),
		newConvertCmd(g),
		newRunCmd(g),
		newSynthCmd(g),
		newBenchCmd(g),
		newEvalCmd(g),
		newQuantizeCmd(g),
		newPruneCmd(g),
		newCompareCmd(g),
		newCheckCmd(g),
		newTrainCmd(g),
		newDistillCmd(g),
		newFinetuneCmd(g),
		newDemoCmd(g),
	)
	return root
}

func main() {
	err := newRootCmd().Execute()
	pprof.StopCPUProfile() // a no-op unless --cpuprofile started one
	if err != nil {
		fmt.Fprintf(os.Stderr, "shrink: %v\n", err)
		os.Exit(exitCode(err))
	}
}

// refuseExisting fails before the work, not after it, when path exists and
// replacing it was not asked for.
func refuseExisting(path string, force bool) error {
	if _, err := os.Lstat(path); err == nil && !force {
		return fmt.Errorf("%s: destination exists (use --force to replace it)", path)
	}
	return nil
}
