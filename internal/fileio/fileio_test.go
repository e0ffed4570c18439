package fileio

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.bin")
	write := func(s string) func(w *bufio.Writer) error {
		return func(w *bufio.Writer) error { _, err := w.WriteString(s); return err }
	}
	if err := WriteFile(path, false, write("one")); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, false, write("two")); !errors.Is(err, ErrExists) {
		t.Errorf("existing file without force: %v", err)
	}
	boom := errors.New("boom")
	if err := WriteFile(path, true, func(w *bufio.Writer) error { w.WriteString("partial"); return boom }); !errors.Is(err, boom) {
		t.Errorf("failing writer: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "one" {
		t.Errorf("a failed write changed the file to %q", b)
	}
	if err := WriteFile(path, true, write("three")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "three" {
		t.Errorf("forced write gave %q", b)
	}
	if names := listDir(t, dir); len(names) != 1 {
		t.Errorf("temporary files left behind: %v", names)
	}
}

func TestWriteDir(t *testing.T) {
	parent := t.TempDir()
	path := filepath.Join(parent, "model")
	fill := func(name string) func(string) error {
		return func(tmp string) error {
			return CreateFile(filepath.Join(tmp, name), func(w *bufio.Writer) error { _, err := w.WriteString(name); return err })
		}
	}
	if err := WriteDir(path, false, fill("a")); err != nil {
		t.Fatal(err)
	}
	if err := WriteDir(path, false, fill("b")); !errors.Is(err, ErrExists) {
		t.Errorf("existing folder without force: %v", err)
	}
	boom := errors.New("boom")
	if err := WriteDir(path, true, func(string) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("failing fill: %v", err)
	}
	if names := listDir(t, path); len(names) != 1 || names[0] != "a" {
		t.Errorf("a failed write changed the folder: %v", names)
	}
	if err := WriteDir(path, true, fill("c")); err != nil {
		t.Fatal(err)
	}
	if names := listDir(t, path); len(names) != 1 || names[0] != "c" {
		t.Errorf("forced write gave %v", names)
	}
	if names := listDir(t, parent); len(names) != 1 {
		t.Errorf("temporary folders left behind: %v", names)
	}
}

func TestMap(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	os.WriteFile(path, []byte("hello"), 0o644)
	data, c, err := Map(path)
	if err != nil || string(data) != "hello" {
		t.Fatalf("Map: %q %v", data, err)
	}
	c.Close()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o644)
	if data, c, err := Map(empty); err != nil || len(data) != 0 {
		t.Errorf("empty file: %v", err)
	} else {
		c.Close()
	}
	if _, _, err := Map(dir); err == nil {
		t.Errorf("mapping a folder worked")
	}
}
