// Package fileio maps input files read-only and writes outputs atomically:
// into a temporary file or folder beside the destination, synced, then renamed.
package fileio

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Map maps path read-only into memory. The returned bytes stay valid until the
// closer is closed; they must never be written to.
func Map(path string) ([]byte, io.Closer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s: not a regular file", path)
	}
	data, m, err := mapFile(f, st.Size())
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, m, nil
}

// ErrExists is returned when the destination exists and replacing it was not asked for.
var ErrExists = errors.New("destination exists (use --force to replace it)")

// WriteFile writes path atomically: fn writes into a temporary file in the same
// folder, which is synced and renamed over path. An existing path is replaced
// only when force is set.
func WriteFile(path string, force bool, fn func(w *bufio.Writer) error) (err error) {
	if !force {
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("%s: %w", path, ErrExists)
		}
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	w := bufio.NewWriterSize(f, 1<<20)
	if err = fn(w); err != nil {
		return err
	}
	if err = w.Flush(); err != nil {
		return err
	}
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// WriteDir builds a folder atomically: fn fills a temporary folder beside path,
// which then takes path's place. An existing path is replaced only when force
// is set; the old folder is removed after the new one is in place.
func WriteDir(path string, force bool, fn func(dir string) error) (err error) {
	_, statErr := os.Lstat(path)
	exists := statErr == nil
	if exists && !force {
		return fmt.Errorf("%s: %w", path, ErrExists)
	}
	parent := filepath.Dir(filepath.Clean(path))
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err = os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err = fn(tmp); err != nil {
		return err
	}
	if err = syncDir(tmp); err != nil {
		return err
	}
	if !exists {
		return os.Rename(tmp, path)
	}
	old := tmp + ".old"
	if err = os.Rename(path, old); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		os.Rename(old, path)
		return err
	}
	return os.RemoveAll(old)
}

// CreateFile writes one file inside a folder being built by WriteDir, synced.
func CreateFile(path string, fn func(w *bufio.Writer) error) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := fn(w); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}
