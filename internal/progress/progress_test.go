package progress

import (
	"bytes"
	"strings"
	"testing"
)

func TestDisabledBarWritesNothing(t *testing.T) {
	var buf bytes.Buffer
	b := NewTo(&buf, "work", 10, "it", false)
	for i := 0; i < 10; i++ {
		b.Add(1)
	}
	b.Finish()
	if buf.Len() != 0 {
		t.Fatalf("disabled bar wrote %q", buf.String())
	}
	var nilBar *Bar
	nilBar.Add(1)
	nilBar.Label("x")
	nilBar.Finish()
}

func TestEnabledBarDrawsAndErases(t *testing.T) {
	var buf bytes.Buffer
	b := NewTo(&buf, "layer 3", 4, "", true)
	b.Add(4) // reaching the total always draws
	out := buf.String()
	if !strings.Contains(out, "layer 3") || !strings.Contains(out, "100%") {
		t.Fatalf("bar output %q lacks label or percentage", out)
	}
	b.Finish()
	if !strings.HasSuffix(buf.String(), "\r\033[K") {
		t.Fatalf("Finish did not erase the line: %q", buf.String())
	}
}
