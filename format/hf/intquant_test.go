package hf

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/format/safetensors"
	"github.com/shrinkml/shrink/model"
)

// intLlama is a llama whose widths are whole int4 groups.
func intLlama() model.Config {
	c := tinyLlama()
	c.HiddenSize, c.IntermediateSize, c.HeadDim = 64, 128, 16
	return c
}

// intModel returns randomModel(intLlama()) with its matrices in the INT
// types, each in turn (asymmetric zero points kept to 4 bits); types lists
// the ones to use.
func intModel(t *testing.T, seed int64, types ...model.DType) *model.Model {
	m := randomModel(t, intLlama(), model.F32, seed)
	r := rand.New(rand.NewSource(seed))
	i := 0
	for k, tn := range m.Tensors {
		if len(tn.Shape) != 2 {
			continue
		}
		d := types[i%len(types)]
		i++
		for tn.Shape[1]%d.BlockElems() != 0 {
			d-- // a smaller group of the same symmetry
		}
		n, err := model.ByteSize(d, tn.Shape)
		if err != nil {
			t.Fatal(err)
		}
		data := make([]byte, n)
		r.Read(data)
		if l := intLayouts[d]; l.asym {
			gb := d.BlockBytes()
			for b := 0; b < len(data)/gb; b++ {
				data[b*gb+2] &= 15
			}
		}
		m.Tensors[k] = &model.Tensor{Name: tn.Name, DType: d, Shape: tn.Shape, Data: data}
	}
	return m
}

var allInt = []model.DType{model.Int8Ch, model.Int4G32, model.Int4G64, model.Int4G128,
	model.Int4G32Asym, model.Int4G64Asym, model.Int4G128Asym}

func TestIntRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name   string
		types  []model.DType
		format string
	}{
		{"int8", []model.DType{model.Int8Ch}, formatInt},
		{"int4 g128", []model.DType{model.Int4G128}, formatPacked}, // rows of 64 fall to groups of 64
		{"int4 g32 asym", []model.DType{model.Int4G32Asym}, formatPacked},
		{"every type", allInt, formatMixed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := intModel(t, 3, tc.types...)
			got, dir := saveLoad(t, m, SaveOptions{})
			sameTensors(t, got.Tensors, m.Tensors)
			if _, ok := got.Metadata[ConfigPrefix+"quantization_config"]; ok {
				t.Error("the loaded model keeps quantization_config")
			}
			var cfg struct {
				QC struct {
					QuantMethod  string                 `json:"quant_method"`
					Format       string                 `json:"format"`
					Status       string                 `json:"quantization_status"`
					ConfigGroups map[string]quantScheme `json:"config_groups"`
					Ignore       []string               `json:"ignore"`
				} `json:"quantization_config"`
			}
			raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(raw, &cfg); err != nil {
				t.Fatal(err)
			}
			qc := cfg.QC
			distinct := map[model.DType]bool{}
			for _, x := range m.Tensors {
				if _, ok := intLayouts[x.DType]; ok {
					distinct[x.DType] = true
				}
			}
			if qc.QuantMethod != "compressed-tensors" || qc.Format != tc.format || qc.Status != "compressed" || len(qc.ConfigGroups) != len(distinct) {
				t.Errorf("quantization_config %s", raw)
			}
			targets := 0
			for _, g := range qc.ConfigGroups {
				targets += len(g.Targets)
				if (qc.Format == formatMixed) != (g.Format != "") || g.Weights == nil || g.Weights.Type != "int" {
					t.Errorf("group %+v", g)
				}
			}
			if want := 2*7 + 2; targets != want || len(qc.Ignore) != 0 {
				t.Errorf("%d targets, want %d; ignore %v", targets, want, qc.Ignore)
			}
			// Saving the loaded model again gives the same files.
			dir2 := filepath.Join(t.TempDir(), "again")
			if err := Save(dir2, got, SaveOptions{}); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(dirFiles(t, dir), dirFiles(t, dir2)) {
				t.Error("saving the loaded model changes the files")
			}
		})
	}
}

// TestIntPackedLayout checks the tensors of one INT4 weight against
// compressed-tensors' pack_to_int32, written from its definition: the
// int32 k of a row holds values 8k..8k+7, value j in bits 4j..4j+3, each the
// signed code plus 8; zero points are packed the same way down the rows.
func TestIntPackedLayout(t *testing.T) {
	const rows, cols = 9, 64
	d := model.Int4G32Asym
	// code(r, c) = (r + 3c) % 16 in shrink's order; zero point (r*5+g)%16.
	data := make([]byte, 0, rows*2*19)
	for r := 0; r < rows; r++ {
		for g := 0; g < 2; g++ {
			blk := make([]byte, 19)
			binary.LittleEndian.PutUint16(blk, uint16(0x3c00+r))
			blk[2] = byte((r*5 + g) % 16)
			for j := 0; j < 32; j++ {
				u := byte((r + 3*(32*g+j)) % 16)
				blk[3+j%16] |= u << (4 * (j / 16))
			}
			data = append(data, blk...)
		}
	}
	w := &model.Tensor{Name: "m.weight", DType: d, Shape: []int{rows, cols}, Data: data}
	parts, _, err := encodeInt([]*model.Tensor{w})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*model.Tensor{}
	for _, p := range parts {
		byName[p.Name] = p
	}
	packed := byName["m.weight_packed"]
	if packed == nil || packed.DType != model.I32 || !reflect.DeepEqual(packed.Shape, []int{rows, cols / 8}) {
		t.Fatalf("weight_packed %v", packed)
	}
	for r := 0; r < rows; r++ {
		for k := 0; k < cols/8; k++ {
			var want uint32
			for j := 0; j < 8; j++ {
				want |= uint32((r+3*(8*k+j))%16) << (4 * j)
			}
			if got := binary.LittleEndian.Uint32(packed.Data[4*(r*cols/8+k):]); got != want {
				t.Fatalf("weight_packed[%d][%d] = %#08x, want %#08x", r, k, got, want)
			}
		}
	}
	zp := byName["m.weight_zero_point"]
	if zp == nil || !reflect.DeepEqual(zp.Shape, []int{2, 2}) {
		t.Fatalf("weight_zero_point %v", zp)
	}
	for i := 0; i < 2; i++ {
		for g := 0; g < 2; g++ {
			var want uint32
			for j := 0; j < 8 && 8*i+j < rows; j++ {
				want |= uint32(((8*i+j)*5+g)%16) << (4 * j)
			}
			if got := binary.LittleEndian.Uint32(zp.Data[4*(i*2+g):]); got != want {
				t.Errorf("weight_zero_point[%d][%d] = %#08x, want %#08x", i, g, got, want)
			}
		}
	}
	scale := byName["m.weight_scale"]
	if scale == nil || scale.DType != model.F16 || !reflect.DeepEqual(scale.Shape, []int{rows, 2}) ||
		binary.LittleEndian.Uint16(scale.Data[2*(2*4+1):]) != 0x3c04 {
		t.Errorf("weight_scale %v", scale)
	}
	if s := byName["m.weight_shape"]; s == nil || s.DType != model.I32 || binary.LittleEndian.Uint32(s.Data[4:]) != cols {
		t.Errorf("weight_shape %v", s)
	}
}

func TestIntDecodeErrors(t *testing.T) {
	base := func() map[string]*model.Tensor {
		m := intModel(t, 5, model.Int4G32Asym)
		parts, _, err := encodeInt([]*model.Tensor{m.Tensor(model.LayerTensor(0, model.FFNDown))})
		if err != nil {
			t.Fatal(err)
		}
		i8 := intModel(t, 5, model.Int8Ch).Tensor(model.LayerTensor(0, model.AttnQ))
		more, _, err := encodeInt([]*model.Tensor{i8})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]*model.Tensor{}
		for _, p := range append(parts, more...) {
			out[p.Name] = p
		}
		return out
	}
	down, q := model.LayerTensor(0, model.FFNDown), model.LayerTensor(0, model.AttnQ)
	dp, qp := strings.TrimSuffix(down, ".weight"), strings.TrimSuffix(q, ".weight")
	tests := []struct {
		name   string
		change func(ts map[string]*model.Tensor)
		want   string
	}{
		{"no shape", func(ts map[string]*model.Tensor) { delete(ts, dp+".weight_shape") }, "weight_shape must hold 2 I32 dimensions"},
		{"negative shape", func(ts map[string]*model.Tensor) {
			ts[dp+".weight_shape"] = i32Tensor(dp+".weight_shape", []int{2}, []int{-64, 128})
		}, "shape [-64 128] is not a matrix"},
		{"shape lies", func(ts map[string]*model.Tensor) {
			ts[dp+".weight_shape"] = i32Tensor(dp+".weight_shape", []int{2}, []int{64, 256})
		}, "want [64 32] for shape [64 256]"},
		{"8-bit packing", func(ts map[string]*model.Tensor) {
			ts[dp+".weight_shape"] = i32Tensor(dp+".weight_shape", []int{2}, []int{64, 64})
		}, "8-bit pack-quantized weights are not supported"},
		{"packed not I32", func(ts map[string]*model.Tensor) { ts[dp+".weight_packed"].DType = model.F32 }, "want I32"},
		{"no scale", func(ts map[string]*model.Tensor) { delete(ts, dp+".weight_scale") }, "weight_scale is missing"},
		{"groups of 16", func(ts map[string]*model.Tensor) {
			s := ts[dp+".weight_scale"]
			ts[dp+".weight_scale"] = &model.Tensor{Name: s.Name, DType: model.F16, Shape: []int{64, 8}, Data: make([]byte, 64*8*2)}
		}, "groups of 16 weights"},
		{"uneven groups", func(ts map[string]*model.Tensor) {
			s := ts[dp+".weight_scale"]
			ts[dp+".weight_scale"] = &model.Tensor{Name: s.Name, DType: model.F16, Shape: []int{64, 3}, Data: make([]byte, 64*3*2)}
		}, "128 columns are not 3 whole groups"},
		{"inexact scale", func(ts map[string]*model.Tensor) {
			s := ts[dp+".weight_scale"]
			f := &model.Tensor{Name: s.Name, DType: model.F32, Shape: s.Shape, Data: make([]byte, 2*len(s.Data))}
			binary.LittleEndian.PutUint32(f.Data[8:], 0x3f800001)
			ts[dp+".weight_scale"] = f
		}, "which fp16 does not hold exactly"},
		{"zero points short", func(ts map[string]*model.Tensor) {
			z := ts[dp+".weight_zero_point"]
			z.Shape, z.Data = []int{7, 4}, z.Data[:7*4*4]
		}, "want I32 [8 4]"},
		{"both dense and packed", func(ts map[string]*model.Tensor) {
			ts[down] = &model.Tensor{Name: down, DType: model.F32, Shape: []int{1}, Data: make([]byte, 4)}
		}, "stored both dense and packed"},
		{"int8 scale per group", func(ts map[string]*model.Tensor) {
			s := ts[qp+".weight_scale"]
			s.Shape, s.Data = []int{64, 2}, make([]byte, 64*2*2)
		}, "one scale per row"},
		{"int8 zero points", func(ts map[string]*model.Tensor) {
			ts[qp+".weight_zero_point"] = &model.Tensor{Name: qp + ".weight_zero_point", DType: model.I8, Shape: []int{64, 1}, Data: append(make([]byte, 63), 1)}
		}, "shrink reads symmetric int8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := base()
			tc.change(ts)
			var list []*model.Tensor
			for _, x := range ts {
				list = append(list, x)
			}
			_, err := decodeInt(list, func(string) string { return "f.safetensors" })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestIntQuantConfigErrors(t *testing.T) {
	group := func(format, weights, acts string) string {
		return `{"quant_method":"compressed-tensors","format":"` + format + `","config_groups":{"group_0":{"targets":["Linear"],"weights":` +
			weights + `,"input_activations":` + acts + `}}}`
	}
	w4 := `{"num_bits":4,"type":"int","symmetric":true,"group_size":128,"strategy":"group"}`
	for _, tc := range []struct {
		name, config string
		isInt        bool
		want         string
	}{
		{"pack-quantized", group("pack-quantized", w4, "null"), true, ""},
		{"sparsity only", `{"quant_method":"compressed-tensors","sparsity_config":{"format":"dense"}}`, false, ""},
		{"fp8", group("float-quantized", `{"num_bits":8,"type":"float"}`, "null"), false, `format "float-quantized" is not supported`},
		{"w4a8", group("pack-quantized", w4, `{"num_bits":8,"type":"int"}`), false, "quantized activations are not supported"},
		{"int2", group("pack-quantized", `{"num_bits":2,"type":"int"}`, "null"), false, "int weights of 4 or 8 bits"},
		{"bad groups", `{"quant_method":"compressed-tensors","config_groups":[1]}`, false, "quantization_config"},
		{"gptq's own config", `{"quant_method":"gptq","bits":4,"group_size":128}`, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			isInt, err := intQuantFormat(map[string]string{"quantization_config": tc.config})
			if isInt != tc.isInt || (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("got %v, %v; want %v, %q", isInt, err, tc.isInt, tc.want)
			}
		})
	}
}

// TestIntLoadsLLMCompressorNames reads a folder whose int4 weights are
// stored with F32 scales, as a file from elsewhere may be.
func TestIntLoadsLLMCompressorNames(t *testing.T) {
	m := intModel(t, 7, model.Int4G64)
	for _, w := range m.Tensors { // finite scales: F32 holds them exactly, NaNs not bit for bit
		if w.DType == model.Int4G64 {
			for b := 0; b < len(w.Data); b += 34 {
				w.Data[b+1] = 0x3c | w.Data[b+1]&3
			}
		}
	}
	dir := filepath.Join(t.TempDir(), "ct")
	if err := Save(dir, m, SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, safetensors.SingleName)
	f, err := safetensors.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ts []*model.Tensor
	for _, x := range f.Tensors {
		c := *x
		c.Data = append([]byte(nil), x.Data...) // f is unmapped below
		if strings.HasSuffix(x.Name, ".weight_scale") {
			c.DType, c.Data = model.F32, make([]byte, 2*len(x.Data))
			for i := 0; i < len(x.Data)/2; i++ {
				v := model.F16ToF32(binary.LittleEndian.Uint16(x.Data[2*i:]))
				binary.LittleEndian.PutUint32(c.Data[4*i:], math.Float32bits(v))
			}
		}
		ts = append(ts, &c)
	}
	f.Close()
	os.Remove(path)
	if err := safetensors.WriteFile(path, ts, map[string]string{"format": "pt"}, true); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	for _, w := range m.Tensors {
		g := got.Tensor(w.Name)
		if g == nil || g.DType != w.DType || string(g.Data) != string(w.Data) {
			t.Fatalf("%s differs", w.Name)
		}
	}
}
