// Package progress draws a one-line progress bar on stderr for long work. It
// draws nothing when stderr is not a terminal or when quiet is set, so logs and
// pipes stay clean.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Bar is a progress bar for one task. The zero value and a nil *Bar are
// silent; all methods are safe for concurrent use.
type Bar struct {
	mu      sync.Mutex
	w       io.Writer
	label   string
	total   int64
	done    int64
	start   time.Time
	last    time.Time
	unit    string
	drawn   bool
	enabled bool
}

// New returns a bar writing to os.Stderr, enabled only when stderr is a
// terminal and quiet is false.
func New(label string, total int64, unit string, quiet bool) *Bar {
	return NewTo(os.Stderr, label, total, unit, !quiet && IsTerminal(os.Stderr))
}

// NewTo returns a bar writing to w when enabled is true.
func NewTo(w io.Writer, label string, total int64, unit string, enabled bool) *Bar {
	now := time.Now()
	return &Bar{w: w, label: label, total: total, unit: unit, start: now, enabled: enabled}
}

// IsTerminal reports whether f is a character device such as a terminal.
func IsTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Label changes the text shown before the bar, e.g. the layer being worked on.
func (b *Bar) Label(s string) {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.label = s
	b.mu.Unlock()
}

// Add advances the bar by n units.
func (b *Bar) Add(n int64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done += n
	if !b.enabled {
		return
	}
	now := time.Now()
	if now.Sub(b.last) < 100*time.Millisecond && b.done < b.total {
		return
	}
	b.last = now
	b.draw(now)
}

// Finish erases the bar, leaving the terminal line clean for results.
func (b *Bar) Finish() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.enabled && b.drawn {
		fmt.Fprint(b.w, "\r\033[K")
		b.drawn = false
	}
}

func (b *Bar) draw(now time.Time) {
	const width = 30
	frac := 0.0
	if b.total > 0 {
		frac = float64(b.done) / float64(b.total)
		if frac > 1 {
			frac = 1
		}
	}
	filled := int(frac * width)
	rate := ""
	if el := now.Sub(b.start).Seconds(); el > 0 && b.unit != "" {
		rate = fmt.Sprintf(" %.1f %s/s", float64(b.done)/el, b.unit)
	}
	fmt.Fprintf(b.w, "\r\033[K%s [%s%s] %3.0f%%%s", b.label, strings.Repeat("=", filled), strings.Repeat(" ", width-filled), 100*frac, rate)
	b.drawn = true
}
