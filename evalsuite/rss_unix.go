//go:build unix

package evalsuite

import (
	"runtime"
	"syscall"
)

// PeakRSS is the most resident memory this process has held so far, in
// bytes, as the kernel counts it; 0 where the platform does not say.
func PeakRSS() int64 {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return 0
	}
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		return int64(u.Maxrss) // bytes there, kilobytes elsewhere
	}
	return int64(u.Maxrss) * 1024
}
