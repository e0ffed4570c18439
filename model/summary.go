package model

import "sort"

// DTypeStats counts the tensors, elements and bytes stored in one dtype.
type DTypeStats struct {
	DType   DType
	Tensors int
	Elems   int64
	Bytes   int64
}

// Summary is what a person wants to know about a checkpoint at a glance.
type Summary struct {
	Architecture string
	Parameters   int64
	TensorBytes  int64
	// BitsPerWeight is the tensor bytes per parameter, in bits.
	BitsPerWeight float64
	ByDType       []DTypeStats // largest share of bytes first
}

// Summarize counts m's parameters and bytes, overall and per dtype.
func (m *Model) Summarize() Summary {
	s := Summary{Architecture: m.Config.Arch}
	by := map[DType]*DTypeStats{}
	for _, t := range m.Tensors {
		st := by[t.DType]
		if st == nil {
			st = &DTypeStats{DType: t.DType}
			by[t.DType] = st
		}
		st.Tensors++
		st.Elems += int64(t.Elems())
		st.Bytes += int64(len(t.Data))
		s.Parameters += int64(t.Elems())
		s.TensorBytes += int64(len(t.Data))
	}
	for _, st := range by {
		s.ByDType = append(s.ByDType, *st)
	}
	sort.Slice(s.ByDType, func(i, j int) bool {
		a, b := s.ByDType[i], s.ByDType[j]
		if a.Bytes != b.Bytes {
			return a.Bytes > b.Bytes
		}
		return a.DType < b.DType
	})
	if s.Parameters > 0 {
		s.BitsPerWeight = 8 * float64(s.TensorBytes) / float64(s.Parameters)
	}
	return s
}
