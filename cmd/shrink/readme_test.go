package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/internal/shareddata"
)

// asCLI, set in the environment, makes the test binary run as shrink itself,
// so that shell scripts can call it (see TestREADME).
const asCLI = "SHRINK_TEST_AS_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(asCLI) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestREADME runs the README's workflow blocks (```sh fences) as a user
// would, one after the other in one folder beside the shared data, with
// shrink on the PATH: every command the README shows must work as shown.
func TestREADME(t *testing.T) {
	if testing.Short() {
		t.Skip("the README's workflows train and compare models for a couple of minutes")
	}
	data := shareddata.Path(t, shareddata.Stories260KBin) // skips without the shared data
	data = filepath.Dir(filepath.Dir(filepath.Dir(data)))
	shareddata.FashionMNIST(t)
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("the README's blocks are bash")
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := shellBlocks(string(readme))
	if len(blocks) < 4 {
		t.Fatalf("found %d sh blocks in README.md, want the 4 workflows at least", len(blocks))
	}

	// root/shared/data is the data; root/work is where the blocks run, so
	// that ../shared/data resolves as it does beside a checkout.
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "shared"), 0o755); err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(abs, filepath.Join(root, "shared", "data")); err != nil {
		t.Fatal(err)
	}
	work, bin := filepath.Join(root, "work"), filepath.Join(root, "bin")
	for _, d := range []string{work, bin} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	wrapper := fmt.Sprintf("#!/bin/sh\n%s=1 exec %q \"$@\"\n", asCLI, self)
	if err := os.WriteFile(filepath.Join(bin, "shrink"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	for i, b := range blocks {
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", b)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("README block %d failed (%v):\n%s\n--- output:\n%s", i+1, err, b, out.String())
		}
		t.Logf("README block %d:\n%s\n--- output:\n%s", i+1, b, out.String())
	}
}

// shellBlocks returns the bodies of the ```sh fenced blocks of a Markdown text.
func shellBlocks(md string) []string {
	var blocks []string
	var cur []string
	in := false
	for line := range strings.SplitSeq(md, "\n") {
		switch {
		case !in && strings.TrimSpace(line) == "```sh":
			in, cur = true, nil
		case in && strings.TrimSpace(line) == "```":
			in = false
			blocks = append(blocks, strings.Join(cur, "\n"))
		case in:
			cur = append(cur, line)
		}
	}
	return blocks
}
