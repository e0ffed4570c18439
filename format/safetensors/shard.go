package safetensors

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/shrinkml/shrink/internal/fileio"
	"github.com/shrinkml/shrink/model"
)

// Names of Hugging Face's single-file and sharded checkpoints.
const (
	SingleName = "model.safetensors"
	IndexName  = "model.safetensors.index.json"
)

// maxIndexSize bounds the index file; real ones are well under a megabyte.
const maxIndexSize = 64 << 20

// ShardName returns the name of shard i (0-based) of n, e.g.
// "model-00001-of-00003.safetensors".
func ShardName(i, n int) string { return fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, n) }

// Index is a sharded checkpoint's index file (model.safetensors.index.json).
type Index struct {
	// Metadata is the index's "metadata" object; total_size is the usual key.
	Metadata map[string]any
	// WeightMap maps each tensor name to the shard file that holds it.
	WeightMap map[string]string
}

// Shards returns the distinct shard file names of the weight map, sorted.
func (ix *Index) Shards() []string {
	set := map[string]bool{}
	for _, s := range ix.WeightMap {
		set[s] = true
	}
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// ReadIndex reads and checks an index file: valid JSON, a weight map of
// strings with no tensor listed twice, and shard names that are plain file
// names in the index's folder.
func ReadIndex(path string) (*Index, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: %w", path, err)
	}
	if st.Size() > maxIndexSize {
		return nil, fmt.Errorf("safetensors %s: index of %d bytes is larger than the limit of %d", path, st.Size(), maxIndexSize)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: %w", path, err)
	}
	ix, err := parseIndex(raw)
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: %w", path, err)
	}
	return ix, nil
}

func parseIndex(raw []byte) (*Index, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, fmt.Errorf("index is not a JSON object: %w", err)
	}
	ix := &Index{}
	if m, ok := top["metadata"]; ok && string(m) != "null" {
		if err := json.Unmarshal(m, &ix.Metadata); err != nil {
			return nil, fmt.Errorf("index metadata is not an object: %w", err)
		}
	}
	wm, ok := top["weight_map"]
	if !ok {
		return nil, errors.New("index has no weight_map")
	}
	// Walk the tokens so that a tensor listed twice is caught; decoding into a
	// map would silently keep the last entry.
	dec := json.NewDecoder(bytes.NewReader(wm))
	dec.UseNumber()
	if err := expectDelim(dec, '{'); err != nil {
		return nil, fmt.Errorf("weight_map is not an object: %w", err)
	}
	ix.WeightMap = map[string]string{}
	for dec.More() {
		name, err := readKey(dec)
		if err != nil {
			return nil, fmt.Errorf("weight_map: %w", err)
		}
		tok, err := token(dec)
		if err != nil {
			return nil, fmt.Errorf("weight_map: %w", err)
		}
		shard, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("weight_map: tensor %q maps to %v, not a file name", name, describe(tok))
		}
		if prev, dup := ix.WeightMap[name]; dup {
			return nil, fmt.Errorf("weight_map lists tensor %q twice (in %s and %s)", name, prev, shard)
		}
		if shard == "" || shard == "." || shard == ".." || strings.ContainsAny(shard, `/\`) {
			return nil, fmt.Errorf("weight_map: tensor %q maps to %q, which is not a plain file name", name, shard)
		}
		ix.WeightMap[name] = shard
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, fmt.Errorf("weight_map: %w", err)
	}
	return ix, nil
}

// Checkpoint is a set of safetensors files read together: one file, or the
// shards of an index. Its tensors' Data alias the file mappings.
type Checkpoint struct {
	// Files are the opened files, shards in name order.
	Files []*File
	// Tensors are all tensors, shard by shard, each in offset order.
	Tensors []*model.Tensor
	// Index is nil for a single file.
	Index *Index
}

// Close releases all file mappings.
func (c *Checkpoint) Close() error {
	var errs []error
	for _, f := range c.Files {
		errs = append(errs, f.Close())
	}
	c.Files = nil
	return errors.Join(errs...)
}

// Metadata returns the __metadata__ of the first file (Hugging Face writes the
// same map into every shard), or nil.
func (c *Checkpoint) Metadata() map[string]string {
	if len(c.Files) == 0 {
		return nil
	}
	return c.Files[0].Metadata
}

// OpenFile opens a single file as a Checkpoint.
func OpenFile(path string) (*Checkpoint, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	return &Checkpoint{Files: []*File{f}, Tensors: f.Tensors}, nil
}

// OpenIndex reads an index file and opens every shard it names, checking that
// each tensor of the weight map is in the shard it names and that no tensor is
// in two shards or missing from the weight map.
func OpenIndex(indexPath string) (_ *Checkpoint, err error) {
	ix, err := ReadIndex(indexPath)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(indexPath)
	c := &Checkpoint{Index: ix}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	shards := ix.Shards()
	for _, shard := range shards {
		f, err := Open(filepath.Join(dir, shard))
		if err != nil {
			return nil, err
		}
		c.Files = append(c.Files, f)
	}
	where := map[string]string{}
	for i, f := range c.Files {
		shard := shards[i]
		for _, t := range f.Tensors {
			if prev, dup := where[t.Name]; dup {
				return nil, fmt.Errorf("safetensors %s: tensor %q is in both %s and %s", indexPath, t.Name, prev, shard)
			}
			where[t.Name] = shard
			switch want, ok := ix.WeightMap[t.Name]; {
			case !ok:
				return nil, fmt.Errorf("safetensors %s: tensor %q of %s is missing from the weight map", indexPath, t.Name, shard)
			case want != shard:
				return nil, fmt.Errorf("safetensors %s: tensor %q is in %s, the weight map says %s", indexPath, t.Name, shard, want)
			}
			c.Tensors = append(c.Tensors, t)
		}
	}
	names := make([]string, 0, len(ix.WeightMap))
	for name := range ix.WeightMap {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if _, ok := where[name]; !ok {
			return nil, fmt.Errorf("safetensors %s: the weight map puts tensor %q in %s, which has no such tensor", indexPath, name, ix.WeightMap[name])
		}
	}
	return c, nil
}

// Plan splits tensors, in order, into shards of at most maxShardSize data
// bytes: a shard is closed when the next tensor would overflow it, and a
// tensor larger than the limit gets a shard of its own. maxShardSize <= 0
// means one shard.
func Plan(tensors []*model.Tensor, maxShardSize int64) [][]*model.Tensor {
	var shards [][]*model.Tensor
	var cur []*model.Tensor
	var size int64
	for _, t := range tensors {
		n := int64(len(t.Data))
		if maxShardSize > 0 && len(cur) > 0 && size+n > maxShardSize {
			shards = append(shards, cur)
			cur, size = nil, 0
		}
		cur = append(cur, t)
		size += n
	}
	if len(cur) > 0 || len(shards) == 0 {
		shards = append(shards, cur)
	}
	return shards
}

// WriteSharded writes tensors into dir, which must exist: as model.safetensors
// when they fit in one shard of maxShardSize bytes (<= 0: no limit), otherwise
// as model-0000i-of-0000n.safetensors shards plus model.safetensors.index.json.
// Every shard carries metadata. Files are created fresh (an existing one is an
// error) and synced; use it inside fileio.WriteDir for an atomic folder. It
// returns the names of the files written.
func WriteSharded(dir string, tensors []*model.Tensor, metadata map[string]string, maxShardSize int64) ([]string, error) {
	seen := make(map[string]bool, len(tensors))
	for _, t := range tensors {
		if seen[t.Name] {
			return nil, fmt.Errorf("safetensors %s: tensor %q appears twice", dir, t.Name)
		}
		seen[t.Name] = true
	}
	shards := Plan(tensors, maxShardSize)
	if len(shards) == 1 {
		path := filepath.Join(dir, SingleName)
		if err := createEncoded(path, shards[0], metadata); err != nil {
			return nil, err
		}
		return []string{SingleName}, nil
	}
	names := make([]string, 0, len(shards)+1)
	weightMap := map[string]string{}
	var total int64
	for i, shard := range shards {
		name := ShardName(i, len(shards))
		if err := createEncoded(filepath.Join(dir, name), shard, metadata); err != nil {
			return nil, err
		}
		for _, t := range shard {
			weightMap[t.Name] = name
			total += int64(len(t.Data))
		}
		names = append(names, name)
	}
	raw, err := IndexJSON(&Index{Metadata: map[string]any{"total_size": total}, WeightMap: weightMap})
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: %w", dir, err)
	}
	path := filepath.Join(dir, IndexName)
	if err := fileio.CreateFile(path, func(w *bufio.Writer) error {
		_, err := w.Write(raw)
		return err
	}); err != nil {
		return nil, fmt.Errorf("safetensors %s: %w", path, err)
	}
	return append(names, IndexName), nil
}

// IndexJSON renders an index as Hugging Face does: two-space indents, keys
// sorted, a final newline.
func IndexJSON(ix *Index) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	md := ix.Metadata
	if md == nil {
		md = map[string]any{}
	}
	if err := enc.Encode(struct {
		Metadata  map[string]any    `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}{md, ix.WeightMap}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func createEncoded(path string, tensors []*model.Tensor, metadata map[string]string) error {
	err := fileio.CreateFile(path, func(w *bufio.Writer) error {
		return Encode(w, tensors, metadata)
	})
	if err != nil {
		return fmt.Errorf("safetensors %s: %w", path, err)
	}
	return nil
}
