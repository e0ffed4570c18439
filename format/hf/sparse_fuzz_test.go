package hf

import (
	"encoding/binary"
	"testing"

	"github.com/shrinkml/shrink/model"
)

// FuzzSparse feeds arbitrary compressed parts to the sparse decoder: it must
// never panic, and what it accepts must re-encode to the same bitmask.
func FuzzSparse(f *testing.F) {
	f.Add(int32(2), int32(10), []byte{0b101, 0, 0, 0b10}, []byte{0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64}, []byte{0, 0, 0, 0, 2, 0, 0, 0}, false)
	f.Add(int32(1), int32(8), []byte{0b00110101}, []byte{0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64}, []byte(nil), true)
	f.Fuzz(func(t *testing.T, rows, cols int32, mask, vals, offs []byte, two4 bool) {
		shape := &model.Tensor{Name: "w.shape", DType: model.I32, Shape: []int{2}, Data: binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, uint32(rows)), uint32(cols))}
		mb := (int(cols) + 7) / 8
		mt := &model.Tensor{Name: "w.bitmask", DType: model.U8, Shape: []int{int(rows), mb}, Data: mask}
		n := len(vals) / 4
		vt := &model.Tensor{Name: "w.compressed", DType: model.F32, Shape: []int{n}, Data: vals[:4*n]}
		format := formatBitmask
		var ot *model.Tensor
		if two4 {
			format = formatBitmask24
			vt.Shape = []int{int(rows), n / max(1, int(rows))}
		} else if offs != nil {
			ot = &model.Tensor{Name: "w.row_offsets", DType: model.I32, Shape: []int{len(offs) / 4}, Data: offs[:len(offs)/4*4]}
		}
		d, err := decodeWeight("w", format, vt, mt, shape, ot)
		if err != nil {
			return
		}
		if d.Elems() != int(rows)*int(cols) || len(d.Data) != 4*d.Elems() {
			t.Fatalf("decoded %v with %d bytes", d.Shape, len(d.Data))
		}
	})
}
