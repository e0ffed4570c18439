package hf

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/shrinkml/shrink/model"
)

// Integer quantization follows compressed-tensors too (the layouts
// llm-compressor writes and vLLM runs; compressors/quantized_compressors/
// pack_quantized.py and naive_quantized.py, quantization/quant_config.py and
// quant_args.py of github.com/vllm-project/compressed-tensors). A weight
// "M.weight" of an INT4 type becomes, in the pack-quantized format:
//
//	M.weight_packed      I32 [rows, cols/8]: eight 4-bit values per int32,
//	                     the first in the lowest bits; each value is the
//	                     signed code plus 8
//	M.weight_scale       F16 [rows, cols/group]
//	M.weight_zero_point  asymmetric only: I32 [ceil(rows/8), cols/group],
//	                     the zero points plus 8 packed the same way along
//	                     the rows (pack_to_int32's packed_dim=0)
//	M.weight_shape       the dense shape [rows, cols]
//
// and a weight of INT8_CH, in the int-quantized format, M.weight (I8 codes)
// and M.weight_scale (F16 [rows, 1]). w = scale·(code − zero point). config.json
// gets "quantization_config": {"quant_method": "compressed-tensors",
// "format", "quantization_status": "compressed", "config_groups": one group
// per scheme, targeting its modules by name, "ignore": the other linear
// weights}; "format" is "mixed-precision" when both formats are present, each
// group then naming its own. As for sparse weights, M.weight_shape is I32
// where compressed-tensors writes I64. Load reads such weights back into the
// INT types, byte for byte.

// Quantization formats, compressed-tensors' names.
const (
	formatPacked = "pack-quantized"
	formatInt    = "int-quantized"
	formatMixed  = "mixed-precision"
)

// quantArgs is compressed-tensors' QuantizationArgs.
type quantArgs struct {
	NumBits        int            `json:"num_bits"`
	Type           string         `json:"type"`
	Symmetric      bool           `json:"symmetric"`
	GroupSize      *int           `json:"group_size"`
	Strategy       string         `json:"strategy"`
	BlockStructure *string        `json:"block_structure"`
	Dynamic        bool           `json:"dynamic"`
	Actorder       *string        `json:"actorder"`
	Observer       string         `json:"observer"`
	ObserverKwargs map[string]any `json:"observer_kwargs"`
}

// quantScheme is compressed-tensors' QuantizationScheme.
type quantScheme struct {
	Targets           []string   `json:"targets"`
	Weights           *quantArgs `json:"weights"`
	InputActivations  *quantArgs `json:"input_activations"`
	OutputActivations *quantArgs `json:"output_activations"`
	Format            string     `json:"format,omitempty"`
}

// intLayout describes an INT type: bits, group (0: per row) and symmetry.
type intLayout struct {
	bits, group int
	asym        bool
}

var intLayouts = map[model.DType]intLayout{
	model.Int8Ch:       {8, 0, false},
	model.Int4G32:      {4, 32, false},
	model.Int4G64:      {4, 64, false},
	model.Int4G128:     {4, 128, false},
	model.Int4G32Asym:  {4, 32, true},
	model.Int4G64Asym:  {4, 64, true},
	model.Int4G128Asym: {4, 128, true},
}

func (l intLayout) format() string {
	if l.bits == 8 {
		return formatInt
	}
	return formatPacked
}

func (l intLayout) args() *quantArgs {
	a := &quantArgs{NumBits: l.bits, Type: "int", Symmetric: !l.asym, Strategy: "channel",
		Observer: "minmax", ObserverKwargs: map[string]any{}}
	if l.group > 0 {
		g := l.group
		a.GroupSize, a.Strategy = &g, "group"
	}
	return a
}

// intCandidate tells whether t is stored in compressed-tensors' layouts.
func intCandidate(t *model.Tensor) (intLayout, bool) {
	l, ok := intLayouts[t.DType]
	return l, ok && len(t.Shape) == 2 && strings.HasSuffix(t.Name, ".weight") && t.Shape[0] > 0 && t.Shape[1] > 0
}

// encodeInt replaces the INT-typed weights of ts by their compressed-tensors
// parts and returns the quantization_config members (nil when there is none).
// Others INT tensors (not 2-D weights) stay in shrink's quantized layout.
func encodeInt(ts []*model.Tensor) ([]*model.Tensor, map[string]any, error) {
	groups := map[intLayout][]string{}
	var out []*model.Tensor
	for _, t := range ts {
		l, ok := intCandidate(t)
		if !ok {
			out = append(out, t)
			continue
		}
		prefix := strings.TrimSuffix(t.Name, ".weight")
		parts, err := compressInt(prefix, t, l)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, parts...)
		groups[l] = append(groups[l], prefix)
	}
	if len(groups) == 0 {
		return ts, nil, nil
	}
	layouts := make([]intLayout, 0, len(groups))
	formats := map[string]bool{}
	for l := range groups {
		layouts = append(layouts, l)
		formats[l.format()] = true
	}
	sort.Slice(layouts, func(i, j int) bool {
		a, b := layouts[i], layouts[j]
		if a.bits != b.bits {
			return a.bits < b.bits
		}
		if a.group != b.group {
			return a.group < b.group
		}
		return !a.asym && b.asym
	})
	format := formatPacked
	if formats[formatInt] {
		format = formatInt
		if formats[formatPacked] {
			format = formatMixed
		}
	}
	cg := map[string]quantScheme{}
	for i, l := range layouts {
		s := quantScheme{Targets: groups[l], Weights: l.args()}
		sort.Strings(s.Targets)
		if format == formatMixed {
			s.Format = l.format()
		}
		cg[fmt.Sprintf("group_%d", i)] = s
	}
	ignore := []string{}
	for _, t := range ts {
		if _, ok := intCandidate(t); !ok && len(t.Shape) == 2 && strings.HasSuffix(t.Name, ".weight") &&
			!strings.HasSuffix(t.Name, "embed_tokens.weight") {
			ignore = append(ignore, strings.TrimSuffix(t.Name, ".weight"))
		}
	}
	sort.Strings(ignore)
	return out, map[string]any{"quant_method": "compressed-tensors", "format": format,
		"quantization_status": "compressed", "config_groups": cg, "ignore": ignore}, nil
}

// compressInt returns the compressed-tensors parts of the weight t.
func compressInt(prefix string, t *model.Tensor, l intLayout) ([]*model.Tensor, error) {
	rows, cols := t.Shape[0], t.Shape[1]
	if l.bits == 8 {
		codes := make([]byte, 0, rows*cols)
		scales := make([]byte, 0, 2*rows)
		for r := 0; r < rows; r++ {
			row := t.Data[r*(cols+2) : (r+1)*(cols+2)]
			scales = append(scales, row[0], row[1])
			codes = append(codes, row[2:]...)
		}
		return []*model.Tensor{
			{Name: prefix + ".weight", DType: model.I8, Shape: []int{rows, cols}, Data: codes},
			{Name: prefix + ".weight_scale", DType: model.F16, Shape: []int{rows, 1}, Data: scales},
		}, nil
	}
	g, hdr := l.group, 2
	if l.asym {
		hdr = 3
	}
	gb, ng := hdr+g/2, cols/g
	packed := make([]byte, rows*cols/2)
	scales := make([]byte, 0, 2*rows*ng)
	var zeros []byte
	if l.asym {
		zeros = make([]byte, 4*((rows+7)/8)*ng)
	}
	for r := 0; r < rows; r++ {
		row := t.Data[r*ng*gb : (r+1)*ng*gb]
		for b := 0; b < ng; b++ {
			blk := row[b*gb : (b+1)*gb]
			scales = append(scales, blk[0], blk[1])
			if l.asym {
				z := blk[2]
				if z > 15 {
					return nil, fmt.Errorf("tensor %q: row %d, group %d: zero point %d does not fit in 4 bits", t.Name, r, b, z)
				}
				// Row r is value r%8 of the int32 at [r/8, b].
				zeros[4*((r/8)*ng+b)+(r%8)/2] |= z << (4 * (r % 2))
			}
			for i := 0; i < g; i++ {
				k, j := i/32, i%32
				u := blk[hdr+16*k+j%16] >> (4 * (j / 16)) & 15
				e := r*cols + b*g + i
				packed[e/2] |= u << (4 * (e % 2))
			}
		}
	}
	out := []*model.Tensor{
		{Name: prefix + ".weight_packed", DType: model.I32, Shape: []int{rows, cols / 8}, Data: packed},
		{Name: prefix + ".weight_scale", DType: model.F16, Shape: []int{rows, ng}, Data: scales},
		i32Tensor(prefix+".weight_shape", []int{2}, []int{rows, cols}),
	}
	if l.asym {
		out = append(out, &model.Tensor{Name: prefix + ".weight_zero_point", DType: model.I32, Shape: []int{(rows + 7) / 8, ng}, Data: zeros})
	}
	return out, nil
}

// intQuantFormat reads quantization_config's format and config groups, and
// tells whether they are integer weight quantization shrink reads; an
// absent config, another quant_method or one without config_groups is not.
func intQuantFormat(extras map[string]string) (bool, error) {
	raw, ok := extras["quantization_config"]
	if !ok {
		return false, nil
	}
	var method struct {
		QuantMethod string `json:"quant_method"`
	}
	if json.Unmarshal([]byte(raw), &method) != nil || method.QuantMethod != "compressed-tensors" {
		return false, nil
	}
	var all struct {
		Format       string                 `json:"format"`
		ConfigGroups map[string]quantScheme `json:"config_groups"`
	}
	if err := json.Unmarshal([]byte(raw), &all); err != nil {
		return false, fmt.Errorf("quantization_config: %v", err)
	}
	if len(all.ConfigGroups) == 0 {
		return false, nil
	}
	names := make([]string, 0, len(all.ConfigGroups))
	for k := range all.ConfigGroups {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		s := all.ConfigGroups[k]
		f := s.Format
		if f == "" {
			f = all.Format
		}
		if f != formatPacked && f != formatInt {
			return false, fmt.Errorf("quantization_config: format %q is not supported (shrink reads %s and %s)", f, formatPacked, formatInt)
		}
		if s.InputActivations != nil || s.OutputActivations != nil {
			return false, fmt.Errorf("quantization_config.config_groups.%s: quantized activations are not supported (shrink reads weight-only int8 and int4)", k)
		}
		if w := s.Weights; w == nil || w.Type != "int" || (w.NumBits != 4 && w.NumBits != 8) {
			return false, fmt.Errorf("quantization_config.config_groups.%s: shrink reads int weights of 4 or 8 bits", k)
		}
	}
	return true, nil
}

// maxIntElems bounds a decoded matrix, whatever its parts claim.
const maxIntElems = 1 << 34

// decodeInt replaces each compressed-tensors integer weight's parts in ts by
// the weight in its INT type. fileOf names a tensor's file for errors.
func decodeInt(ts []*model.Tensor, fileOf func(string) string) ([]*model.Tensor, error) {
	byName := map[string]*model.Tensor{}
	for _, t := range ts {
		byName[t.Name] = t
	}
	parts := map[string]bool{}
	decoded := map[string]*model.Tensor{}
	for _, t := range ts {
		var (
			d   *model.Tensor
			err error
		)
		if prefix, ok := strings.CutSuffix(t.Name, ".weight_packed"); ok {
			d, err = decodePacked(prefix, byName, parts)
		} else if prefix, ok := strings.CutSuffix(t.Name, ".weight"); ok && t.DType == model.I8 && byName[prefix+".weight_scale"] != nil {
			d, err = decodeInt8(prefix, byName, parts)
		} else {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fileOf(t.Name), err)
		}
		decoded[t.Name] = d
	}
	if len(decoded) == 0 {
		return ts, nil
	}
	var out []*model.Tensor
	for _, t := range ts {
		if d := decoded[t.Name]; d != nil {
			out = append(out, d)
		} else if !parts[t.Name] {
			out = append(out, t)
		}
	}
	return out, nil
}

// scaleBits reads a scale as fp16 bits: F16 as it is, F32 and BF16 when
// fp16 holds them exactly (shrink's layouts store fp16 scales).
func scaleBits(t *model.Tensor, i int) (uint16, error) {
	var v float32
	switch t.DType {
	case model.F16:
		return binary.LittleEndian.Uint16(t.Data[2*i:]), nil
	case model.BF16:
		v = math.Float32frombits(uint32(binary.LittleEndian.Uint16(t.Data[2*i:])) << 16)
	case model.F32:
		v = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
	}
	h := model.F32ToF16(v)
	if model.F16ToF32(h) != v && !(v != v) {
		return 0, fmt.Errorf("%s[%d] is %g, which fp16 does not hold exactly", t.Name, i, v)
	}
	return h, nil
}

// checkScale checks a weight_scale tensor: F16, BF16 or F32 of shape [rows, n].
func checkScale(s *model.Tensor, rows, n int) error {
	if s == nil {
		return fmt.Errorf("no weight_scale")
	}
	if s.DType != model.F16 && s.DType != model.BF16 && s.DType != model.F32 {
		return fmt.Errorf("%s has dtype %s; shrink reads F16, BF16 and F32 scales", s.Name, s.DType)
	}
	if len(s.Shape) != 2 || s.Shape[0] != rows || s.Shape[1] != n || s.Check() != nil {
		return fmt.Errorf("%s has shape %v, want [%d %d]", s.Name, s.Shape, rows, n)
	}
	return nil
}

// decodeInt8 reads an int-quantized weight: I8 codes and a scale per row.
func decodeInt8(prefix string, byName map[string]*model.Tensor, parts map[string]bool) (*model.Tensor, error) {
	name := prefix + ".weight"
	w, s := byName[name], byName[prefix+".weight_scale"]
	bad := func(format string, a ...any) error {
		return fmt.Errorf("int8 tensor %q: %s", name, fmt.Sprintf(format, a...))
	}
	if len(w.Shape) != 2 || w.Shape[0] <= 0 || w.Shape[1] <= 0 || w.Check() != nil {
		return nil, bad("shape %v is not a matrix", w.Shape)
	}
	rows, cols := w.Shape[0], w.Shape[1]
	if err := checkScale(s, rows, 1); err != nil {
		return nil, bad("%v (one scale per row)", err)
	}
	if z := byName[prefix+".weight_zero_point"]; z != nil {
		if z.Check() != nil || len(z.Data) == 0 || strings.Trim(string(z.Data), "\x00") != "" {
			return nil, bad("%s is not all zero; shrink reads symmetric int8", z.Name)
		}
		parts[z.Name] = true
	}
	data := make([]byte, 0, rows*(cols+2))
	for r := 0; r < rows; r++ {
		h, err := scaleBits(s, r)
		if err != nil {
			return nil, bad("%v", err)
		}
		data = append(data, byte(h), byte(h>>8))
		data = append(data, w.Data[r*cols:(r+1)*cols]...)
	}
	parts[s.Name] = true
	return &model.Tensor{Name: name, DType: model.Int8Ch, Shape: []int{rows, cols}, Data: data}, nil
}

// decodePacked reads a pack-quantized 4-bit weight.
func decodePacked(prefix string, byName map[string]*model.Tensor, parts map[string]bool) (*model.Tensor, error) {
	name := prefix + ".weight"
	p, shape := byName[prefix+".weight_packed"], byName[prefix+".weight_shape"]
	s, z := byName[prefix+".weight_scale"], byName[prefix+".weight_zero_point"]
	bad := func(format string, a ...any) error {
		return fmt.Errorf("packed tensor %q: %s", name, fmt.Sprintf(format, a...))
	}
	if byName[name] != nil {
		return nil, bad("stored both dense and packed")
	}
	if shape == nil || shape.DType != model.I32 || shape.Elems() != 2 || shape.Check() != nil {
		return nil, bad("%s.weight_shape must hold 2 I32 dimensions", prefix)
	}
	rows := int(int32(binary.LittleEndian.Uint32(shape.Data)))
	cols := int(int32(binary.LittleEndian.Uint32(shape.Data[4:])))
	if rows <= 0 || cols <= 0 || int64(rows) > maxIntElems/int64(cols) {
		return nil, bad("shape [%d %d] is not a matrix shrink can hold", rows, cols)
	}
	if p.DType != model.I32 || len(p.Shape) != 2 || p.Check() != nil {
		return nil, bad("%s has dtype %s and shape %v, want I32 [rows, cols/8]", p.Name, p.DType, p.Shape)
	}
	if p.Shape[0] != rows || p.Shape[1] != (cols+7)/8 {
		if p.Shape[0] == rows && p.Shape[1] == (cols+3)/4 {
			return nil, bad("8-bit pack-quantized weights are not supported; shrink reads 4-bit ones")
		}
		return nil, bad("%s has shape %v, want [%d %d] for shape [%d %d]", p.Name, p.Shape, rows, (cols+7)/8, rows, cols)
	}
	if s == nil || len(s.Shape) != 2 || s.Shape[1] <= 0 {
		return nil, bad("%s.weight_scale is missing or not [rows, groups]", prefix)
	}
	ng := s.Shape[1]
	g := cols / ng
	var d model.DType
	switch {
	case g*ng != cols:
		return nil, bad("%d columns are not %d whole groups", cols, ng)
	case z == nil:
		d = map[int]model.DType{32: model.Int4G32, 64: model.Int4G64, 128: model.Int4G128}[g]
	default:
		d = map[int]model.DType{32: model.Int4G32Asym, 64: model.Int4G64Asym, 128: model.Int4G128Asym}[g]
	}
	if d == model.Invalid {
		return nil, bad("groups of %d weights; shrink reads groups of 32, 64 and 128", g)
	}
	if err := checkScale(s, rows, ng); err != nil {
		return nil, bad("%v", err)
	}
	if z != nil && (z.DType != model.I32 || len(z.Shape) != 2 || z.Shape[0] != (rows+7)/8 || z.Shape[1] != ng || z.Check() != nil) {
		return nil, bad("%s has dtype %s and shape %v, want I32 [%d %d]", z.Name, z.DType, z.Shape, (rows+7)/8, ng)
	}
	hdr := 2
	if z != nil {
		hdr = 3
	}
	gb := hdr + g/2
	data := make([]byte, rows*ng*gb)
	for r := 0; r < rows; r++ {
		for b := 0; b < ng; b++ {
			blk := data[(r*ng+b)*gb : (r*ng+b+1)*gb]
			h, err := scaleBits(s, r*ng+b)
			if err != nil {
				return nil, bad("%v", err)
			}
			blk[0], blk[1] = byte(h), byte(h>>8)
			if z != nil {
				blk[2] = z.Data[4*((r/8)*ng+b)+(r%8)/2] >> (4 * (r % 2)) & 15
			}
			for i := 0; i < g; i++ {
				e := r*((cols+7)/8*8) + b*g + i // rows are padded to whole int32s
				u := p.Data[e/2] >> (4 * (e % 2)) & 15
				k, j := i/32, i%32
				blk[hdr+16*k+j%16] |= u << (4 * (j / 16))
			}
		}
	}
	parts[p.Name], parts[shape.Name], parts[s.Name] = true, true, true
	if z != nil {
		parts[z.Name] = true
	}
	return &model.Tensor{Name: name, DType: d, Shape: []int{rows, cols}, Data: data}, nil
}

// intSave returns a shallow copy of m whose INT weights are in
// compressed-tensors' layouts, with the quantization_config merged into
// config.json's (a sparsity_config stays beside it), or m when it has none.
func intSave(m *model.Model) (*model.Model, error) {
	ts, qc, err := encodeInt(m.Tensors)
	if err != nil || qc == nil {
		return m, err
	}
	if raw, ok := m.Metadata[ConfigPrefix+"quantization_config"].(string); ok {
		var old map[string]any
		if json.Unmarshal([]byte(raw), &old) == nil && old["sparsity_config"] != nil {
			qc["sparsity_config"] = old["sparsity_config"]
		}
	}
	return withQuantConfig(m, ts, qc)
}
