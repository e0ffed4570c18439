//go:build !amd64 || purego

package kernels

// Without assembly the integer kernels are their generic loops.

func qMatMul(f QFormat, out []float32, ldo int, w []byte, rows int, x *Q8Acts) {
	qMatMulGeneric(f, out, ldo, w, rows, x)
}

func quantRow(q []int8, d, c []float32, s []int32, x []float32) { quantizeRow(q, d, c, s, x) }

func arrangeActs(a *Q8Acts) {}

func qIntSeq(f QFormat, nb int) bool { return false }

func qQuad(f QFormat, n int) bool { return false }
