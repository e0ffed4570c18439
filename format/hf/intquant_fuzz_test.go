package hf

import (
	"bytes"
	"testing"

	"github.com/shrinkml/shrink/model"
)

// FuzzIntQuant feeds arbitrary compressed-tensors parts to the integer
// decoder: it must never panic, and what it accepts must encode back to the
// same parts.
func FuzzIntQuant(f *testing.F) {
	f.Add(int32(2), int32(32), int32(1), make([]byte, 32), []byte{0, 60, 0, 60}, []byte(nil), false)
	f.Add(int32(9), int32(64), int32(2), bytes.Repeat([]byte{0x5a}, 9*32), bytes.Repeat([]byte{1, 2}, 18), bytes.Repeat([]byte{0x11}, 16), false)
	f.Add(int32(3), int32(5), int32(1), bytes.Repeat([]byte{0x80}, 15), []byte{0, 60, 0, 188, 1, 0}, []byte(nil), true)
	f.Fuzz(func(t *testing.T, rows, cols, groups int32, packed, scales, zeros []byte, int8 bool) {
		r, c, g := int(rows), int(cols), int(groups)
		var ts []*model.Tensor
		if int8 {
			ts = []*model.Tensor{
				{Name: "m.weight", DType: model.I8, Shape: []int{r, c}, Data: packed},
				{Name: "m.weight_scale", DType: model.F16, Shape: []int{r, 1}, Data: scales},
			}
		} else {
			ts = []*model.Tensor{
				{Name: "m.weight_packed", DType: model.I32, Shape: []int{r, max(0, c+7) / 8}, Data: packed},
				{Name: "m.weight_scale", DType: model.F16, Shape: []int{r, g}, Data: scales},
				i32Tensor("m.weight_shape", []int{2}, []int{r, c}),
			}
			if zeros != nil {
				ts = append(ts, &model.Tensor{Name: "m.weight_zero_point", DType: model.I32, Shape: []int{max(0, r+7) / 8, g}, Data: zeros})
			}
		}
		out, err := decodeInt(ts, func(string) string { return "fuzz" })
		if err != nil {
			return
		}
		if len(out) != 1 || out[0].Check() != nil {
			t.Fatalf("decoded %d tensors: %v", len(out), out)
		}
		back, _, err := encodeInt(out)
		if err != nil {
			t.Fatalf("re-encoding: %v", err)
		}
		byName := map[string]*model.Tensor{}
		for _, x := range back {
			byName[x.Name] = x
		}
		for _, x := range ts {
			y := byName[x.Name]
			if y == nil || y.DType != x.DType || !bytes.Equal(y.Data, x.Data) {
				// Padding rows of the zero points are dropped, the rest kept.
				if x.Name == "m.weight_zero_point" && y != nil && len(y.Data) == len(x.Data) && r%8 != 0 {
					continue
				}
				t.Fatalf("%s changed in a round trip", x.Name)
			}
		}
	})
}
