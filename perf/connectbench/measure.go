package main

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// sample is one reading of a run's progress: records the source side had
// written (acknowledged by the cluster) and records the sink side had
// received, at one instant.
type sample struct {
	At   time.Time `json:"at"`
	Src  int64     `json:"src"`
	Sink int64     `json:"sink"`
}

// window is the steady stretch of a run the rate is taken over.
type window struct {
	Rate     float64 // sink records/s
	SrcRate  float64 // source records/s over the same stretch
	Records  int64   // sink records in the stretch
	Seconds  float64
	CatchUp  bool // the source had finished before the stretch began
	Short    bool // too few samples to skip the warm-up: the whole run
	From, To int  // sample indexes
}

// steadyWindow picks the stretch the end-to-end rate is measured over: it
// starts at the first sample where the sink has received warm records
// (the pipeline is warm: clients connected, batches flowing) and ends at
// the first later sample where either side has reached total. Ending when
// the source finishes keeps both halves running over the whole stretch:
// after that the sink has the machine to itself and reads a backlog
// faster than the pipeline moves. When the source finished before the
// sink was warm, the stretch runs to the sink's end and CatchUp says so.
func steadyWindow(s []sample, warm, total int64) (window, error) {
	from := slices.IndexFunc(s, func(x sample) bool { return x.Sink >= warm })
	if from < 0 {
		return window{}, fmt.Errorf("the sink never reached the warm-up mark of %d records (last sample: %+v)", warm, last(s))
	}
	w := window{From: from, CatchUp: s[from].Src >= total}
	w.To = -1
	for i := from + 1; i < len(s); i++ {
		if s[i].Sink >= total || (!w.CatchUp && s[i].Src >= total) {
			w.To = i
			break
		}
	}
	if w.To < 0 {
		if last(s).Sink < total {
			return window{}, fmt.Errorf("the run ended before either side reached %d records (last sample: %+v)", total, last(s))
		}
		// The warm-up mark and the end fell in one sampling interval:
		// the run was too short to leave out its start, so it is taken
		// whole and flagged.
		w = window{From: 0, To: len(s) - 1, Short: true}
	}
	a, b := s[w.From], s[w.To]
	w.Seconds = b.At.Sub(a.At).Seconds()
	if w.Seconds <= 0 {
		return window{}, errors.New("the steady stretch has no length: sample more often or move more records")
	}
	w.Records = b.Sink - a.Sink
	w.Rate = float64(w.Records) / w.Seconds
	w.SrcRate = float64(b.Src-a.Src) / w.Seconds
	return w, nil
}

func last(s []sample) sample {
	if len(s) == 0 {
		return sample{}
	}
	return s[len(s)-1]
}

// clockTicks is USER_HZ, the unit of the times in /proc/PID/stat: 100 on
// every Linux architecture Go supports, whatever the kernel's tick rate.
const clockTicks = 100

// procStat is what the benchmark reads from /proc/PID/stat.
type procStat struct {
	PPid int
	// CPU is utime+stime+cutime+cstime in seconds: the process's own time
	// and that of children it has waited for, so a plugin process that
	// exits in the middle of a run still counts.
	CPU float64
}

// parseProcStat reads the parent pid and CPU times from the text of
// /proc/PID/stat. The command name (field 2) is in parentheses and may
// hold spaces or parentheses itself, so fields are counted from the last
// ')': field 4 is ppid, 14-17 utime, stime, cutime, cstime.
func parseProcStat(b []byte) (procStat, error) {
	end := bytes.LastIndexByte(b, ')')
	if end < 0 {
		return procStat{}, fmt.Errorf("/proc stat: no ')' in %q", b)
	}
	f := strings.Fields(string(b[end+1:]))
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("/proc stat: %d fields after the command name, want at least 15", len(f))
	}
	var st procStat
	var err error
	if st.PPid, err = strconv.Atoi(f[1]); err != nil {
		return procStat{}, fmt.Errorf("/proc stat: ppid %q: %w", f[1], err)
	}
	var ticks int64
	for _, s := range f[11:15] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return procStat{}, fmt.Errorf("/proc stat: cpu time %q: %w", s, err)
		}
		ticks += v
	}
	st.CPU = float64(ticks) / clockTicks
	return st, nil
}

// metricSum adds up the samples of one Prometheus counter in text
// exposition format whose labels include connector="<connector>" (every
// task of the connector). ok is false when there is none yet.
func metricSum(text []byte, name, connector string) (sum float64, ok bool, err error) {
	label := `connector="` + connector + `"`
	for line := range bytes.Lines(text) {
		line = bytes.TrimSpace(line)
		rest, found := bytes.CutPrefix(line, []byte(name+"{"))
		if !found {
			continue
		}
		labels, value, found := bytes.Cut(rest, []byte("} "))
		if !found || !bytes.Contains(labels, []byte(label)) {
			continue
		}
		// A sample may carry a timestamp after the value.
		v, _, _ := bytes.Cut(value, []byte(" "))
		x, perr := strconv.ParseFloat(string(v), 64)
		if perr != nil {
			return 0, false, fmt.Errorf("metric %s: value %q: %w", name, v, perr)
		}
		sum += x
		ok = true
	}
	return sum, ok, nil
}

// ratio is a/b, NaN when b is not positive.
func ratio(a, b float64) float64 {
	if b <= 0 || math.IsNaN(a) || math.IsNaN(b) {
		return math.NaN()
	}
	return a / b
}
