// Package shareddata finds the shared test data (real models and texts) that
// lives beside the repository, never inside it.
package shareddata

import (
	"os"
	"path/filepath"
	"testing"
)

// EnvVar overrides where the shared data folder is; by default it is
// ../shared/data relative to the repository root.
const EnvVar = "SHRINK_DATA"

// Dir returns the shared data folder, or "" if it cannot be found.
func Dir() string {
	if d := os.Getenv(EnvVar); d != "" {
		return d
	}
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "..", "shared", "data")
		}
		if filepath.Dir(dir) == dir {
			return ""
		}
	}
}

// Path returns the path of rel inside the shared data folder. When the file is
// missing the test is skipped with a message saying where it was looked for,
// except under CI=true, where a missing file fails the test.
func Path(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(Dir(), filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("shared test data %s is missing (set %s to the data folder): %v", p, EnvVar, err)
		}
		t.Skipf("shared test data %s is missing; set %s to the data folder to run this test", p, EnvVar)
	}
	return p
}

// Stories260K paths, relative to the data folder.
const (
	Stories260KBin = "llama2c/stories260K/stories260K.bin"
	Tok512Bin      = "llama2c/stories260K/tok512.bin"
	TinyStoriesVal = "text/tinystories/tinystories_val_first.txt"
)
