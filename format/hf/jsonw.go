package hf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// The JSON files shrink writes (config.json, tokenizer.json, ...) need keys in
// a fixed order, which maps cannot give; these types build them.

// kv is one member of an ordered object.
type kv struct {
	k string
	v any
}

// obj is a JSON object whose members keep their order.
type obj []kv

// rawJSON is a JSON value written as given (re-indented).
type rawJSON []byte

// marshalIndent renders v with two-space indents, one member or element per
// line as Python's json.dumps(indent=2) does, and a final newline.
func marshalIndent(v any) ([]byte, error) {
	var buf bytes.Buffer
	if err := writeValue(&buf, v, 0); err != nil {
		return nil, err
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

func writeValue(buf *bytes.Buffer, v any, depth int) error {
	pad := strings.Repeat("  ", depth+1)
	switch x := v.(type) {
	case obj:
		if len(x) == 0 {
			buf.WriteString("{}")
			return nil
		}
		buf.WriteString("{\n")
		for i, m := range x {
			buf.WriteString(pad)
			if err := writeScalar(buf, m.k); err != nil {
				return err
			}
			buf.WriteString(": ")
			if err := writeValue(buf, m.v, depth+1); err != nil {
				return fmt.Errorf("%s: %w", m.k, err)
			}
			if i+1 < len(x) {
				buf.WriteByte(',')
			}
			buf.WriteByte('\n')
		}
		buf.WriteString(pad[2:])
		buf.WriteByte('}')
	case []any:
		if len(x) == 0 {
			buf.WriteString("[]")
			return nil
		}
		buf.WriteString("[\n")
		for i, e := range x {
			buf.WriteString(pad)
			if err := writeValue(buf, e, depth+1); err != nil {
				return err
			}
			if i+1 < len(x) {
				buf.WriteByte(',')
			}
			buf.WriteByte('\n')
		}
		buf.WriteString(pad[2:])
		buf.WriteByte(']')
	case []string:
		a := make([]any, len(x))
		for i, s := range x {
			a[i] = s
		}
		return writeValue(buf, a, depth)
	case []int:
		a := make([]any, len(x))
		for i, n := range x {
			a[i] = n
		}
		return writeValue(buf, a, depth)
	case rawJSON:
		var out bytes.Buffer
		if err := json.Indent(&out, x, pad[2:], "  "); err != nil {
			return err
		}
		buf.Write(out.Bytes())
	default:
		return writeScalar(buf, v)
	}
	return nil
}

func writeScalar(buf *bytes.Buffer, v any) error {
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	buf.Write(bytes.TrimSuffix(out.Bytes(), []byte("\n")))
	return nil
}
