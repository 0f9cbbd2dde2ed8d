package bench

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
)

// IsTerminal reports whether w is a terminal (where a progress bar may be
// drawn).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// ShowProgress draws p on w every interval until the returned stop is
// called, which erases the bar. stop may be called more than once.
func ShowProgress(w io.Writer, p *Progress, interval time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprint(w, "\r\033[K")
				return
			case <-t.C:
				phase, n, total := p.Snapshot()
				if phase != "" {
					fmt.Fprint(w, "\r\033[K"+renderBar(phase, n, total, time.Since(start), 30))
				}
			}
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() { close(done); wg.Wait() })
	}
}

// renderBar is one line: phase, a bar of width cells, counts, percentage
// and time since the start.
func renderBar(phase string, n, total int64, elapsed time.Duration, width int) string {
	frac := 0.0
	if total > 0 {
		frac = min(max(float64(n)/float64(total), 0), 1)
	}
	full := int(frac * float64(width))
	bar := strings.Repeat("#", full) + strings.Repeat(".", width-full)
	return fmt.Sprintf("%-20s [%s] %s/%s %3.0f%% %5.1fs", phase, bar, count(n), count(total), frac*100, elapsed.Seconds())
}
