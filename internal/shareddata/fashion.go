package shareddata

import (
	"os"
	"path/filepath"
	"testing"
)

// FashionMNISTEnv overrides where tests look for the Fashion-MNIST IDX files;
// by default they are where Debian's dataset-fashion-mnist package puts them.
const FashionMNISTEnv = "SHRINK_FASHION_MNIST"

// FashionMNIST returns the folder holding the Fashion-MNIST IDX files. When
// they are missing the test is skipped with a message saying how to install
// them, except under CI=true, where it fails.
func FashionMNIST(t testing.TB) string {
	t.Helper()
	dir := "/usr/share/datasets/fashion-mnist"
	if d := os.Getenv(FashionMNISTEnv); d != "" {
		dir = d
	}
	p := filepath.Join(dir, "t10k-labels-idx1-ubyte.gz")
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Fashion-MNIST is missing (%v): CI must run `apt-get install dataset-fashion-mnist` (or set %s)", err, FashionMNISTEnv)
		}
		t.Skipf("Fashion-MNIST is missing from %s; run `apt-get install dataset-fashion-mnist` (or set %s) to run this test", dir, FashionMNISTEnv)
	}
	return dir
}
