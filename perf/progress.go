package perf

import (
	"fmt"
	"io"
	"os"
	"time"
)

// startProgress prints a live status line on w once a second while a run
// goes on, if w is a terminal; piped or redirected output gets nothing, so
// logs and harnesses see only the final result. The returned function stops
// it and clears the line.
func startProgress(w io.Writer, m *meter) (stop func()) {
	f, ok := w.(*os.File)
	if !ok || !isTerminal(f) {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		prevAt, prevRecords, prevBytes := time.Now(), int64(0), int64(0)
		for {
			select {
			case <-done:
				fmt.Fprint(w, "\r\033[K")
				return
			case now := <-tick.C:
				records, bytes := m.records.Load(), m.bytes.Load()
				dt := now.Sub(prevAt).Seconds()
				st := status{
					elapsed:    now.Sub(m.start),
					warming:    !m.measuring(now),
					recsPerSec: float64(records-prevRecords) / dt,
					mbPerSec:   float64(bytes-prevBytes) / 1e6 / dt,
					p99:        -1,
					requests:   m.requests,
				}
				if m.lat != nil && records > 0 {
					st.p99 = m.lat.Percentile(99)
				}
				prevAt, prevRecords, prevBytes = now, records, bytes
				fmt.Fprint(w, "\r"+st.line()+"\033[K")
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// status is one progress line's content.
type status struct {
	elapsed    time.Duration
	warming    bool
	recsPerSec float64
	mbPerSec   float64
	p99        time.Duration // negative: no latency (consume mode, or none yet)
	requests   bool          // rtt: requests/s, and no MB/s worth showing
}

func (s status) line() string {
	head := fmt.Sprintf("%7.1fs", s.elapsed.Seconds())
	if s.warming {
		return head + "  warming up"
	}
	if s.requests {
		return fmt.Sprintf("%s  %11.1f requests/s", head, s.recsPerSec)
	}
	line := fmt.Sprintf("%s  %11.1f records/s  %9.3f MB/s", head, s.recsPerSec, s.mbPerSec)
	if s.p99 >= 0 {
		line += fmt.Sprintf("  p99 %.3f ms", millis(s.p99))
	}
	return line
}
