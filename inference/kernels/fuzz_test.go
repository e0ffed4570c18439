package kernels

import (
	"math"
	"testing"
)

// fuzzSlice returns n values in [-8, 8) drawn from data (a fixed pattern if
// data is empty), starting off floats into a buffer whose tail is NaN so that
// reads past the end show up in the results.
func fuzzSlice(data []byte, seed, n, off int) []float32 {
	buf := make([]float32, off+n+17)
	for i := range buf {
		buf[i] = float32(math.NaN())
	}
	s := buf[off : off+n]
	for i := range s {
		b := byte(i*31 + seed*7)
		if len(data) > 0 {
			b ^= data[(i+seed)%len(data)]
		}
		s[i] = float32(int8(b)) / 16
	}
	return s
}

// FuzzMatMul checks MatMul, MatVec and Dot in every variant against a
// float64 reference on fuzzed shapes, strides, alignments and values.
func FuzzMatMul(f *testing.F) {
	f.Add(uint8(5), uint8(13), uint16(100), uint8(2), uint8(1), []byte{1, 2, 3})
	f.Add(uint8(4), uint8(6), uint16(16), uint8(0), uint8(0), []byte{})
	f.Add(uint8(9), uint8(19), uint16(2100), uint8(3), uint8(5), []byte{0x80, 0x7f, 0})
	f.Fuzz(func(t *testing.T, nb, rowsb uint8, colsb uint16, padb, offb uint8, data []byte) {
		n, rows, cols := int(nb%12), int(rowsb%20), int(colsb%2200)
		ldo, off := rows+int(padb%4), int(offb%16)
		x := fuzzSlice(data, 1, n*cols, off)
		w := fuzzSlice(data, 2, rows*cols, (off+3)%16)
		want := make([]float64, n*rows)
		mag := make([]float64, n*rows)
		for i := range want {
			t0, r := i/max(rows, 1), i%max(rows, 1)
			want[i], mag[i] = dot64(x[t0*cols:(t0+1)*cols], w[r*cols:(r+1)*cols])
		}
		saved := impl
		defer func() { impl = saved }()
		for _, v := range variants() {
			impl = v
			size := 0
			if n > 0 {
				size = (n-1)*ldo + rows
			}
			out := make([]float32, size+1)
			out[size] = -3
			MatMul(out[:size], ldo, x, w, n, rows, cols)
			if out[size] != -3 {
				t.Fatalf("%s: MatMul(n=%d rows=%d cols=%d ldo=%d) wrote past out", implNames[v], n, rows, cols, ldo)
			}
			for i := range want {
				t0, r := i/rows, i%rows
				if got := out[t0*ldo+r]; !near(got, want[i], mag[i]) {
					t.Fatalf("%s: MatMul(n=%d rows=%d cols=%d ldo=%d)[%d,%d] = %g, want %g",
						implNames[v], n, rows, cols, ldo, t0, r, got, want[i])
				}
			}
			if n == 0 {
				continue
			}
			mv := make([]float32, rows)
			MatVec(mv, w, x[:cols], cols)
			for r, got := range mv {
				if !near(got, want[r], mag[r]) {
					t.Fatalf("%s: MatVec(rows=%d cols=%d)[%d] = %g, want %g", implNames[v], rows, cols, r, got, want[r])
				}
			}
			if rows > 0 {
				if got := Dot(x[:cols], w); !near(got, want[0], mag[0]) {
					t.Fatalf("%s: Dot(%d) = %g, want %g", implNames[v], cols, got, want[0])
				}
			}
			y0 := fuzzSlice(data, 3, cols, 0)
			y := append(make([]float32, 0, cols+1), y0...)
			y = append(y, -3)
			Axpy(0.5, x[:cols], y[:cols])
			for i, got := range y[:cols] {
				want := float64(y0[i]) + 0.5*float64(x[i])
				if !near(got, want, math.Abs(float64(y0[i]))+math.Abs(0.5*float64(x[i]))) {
					t.Fatalf("%s: Axpy(%d)[%d] = %g, want %g", implNames[v], cols, i, got, want)
				}
			}
			if y[cols] != -3 {
				t.Fatalf("%s: Axpy(%d) wrote past y", implNames[v], cols)
			}
		}
	})
}
