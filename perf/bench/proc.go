package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. It
// is 100 on every Linux architecture Go supports; the kernel converts to it
// whatever its internal tick rate is.
const clockTicks = 100

// parseStatCPU returns utime+stime in seconds from the text of
// /proc/PID/stat. The command name (field 2) is in parentheses and may hold
// spaces or parentheses itself, so fields are counted from the last ')'.
func parseStatCPU(stat []byte) (float64, error) {
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, fmt.Errorf("parse /proc stat: no ')' in %q", truncate(string(stat), 80))
	}
	// After ") " come field 3 (state) onwards; utime and stime are fields
	// 14 and 15, so indexes 11 and 12 here.
	fields := strings.Fields(string(stat[end+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("parse /proc stat: %d fields after the command name, want at least 13", len(fields))
	}
	var ticks uint64
	for _, f := range fields[11:13] {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse /proc stat: utime/stime %q: %w", f, err)
		}
		ticks += v
	}
	return float64(ticks) / clockTicks, nil
}

// parseStatusRSS returns VmRSS in bytes from the text of /proc/PID/status.
func parseStatusRSS(status []byte) (int64, error) {
	for _, line := range strings.Split(string(status), "\n") {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("parse /proc status: unexpected VmRSS line %q", line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse /proc status: VmRSS %q: %w", f[0], err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("parse /proc status: no VmRSS line (zombie process?)")
}

func readProcCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

func readProcRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseStatusRSS(b)
}

// procSample is one reading of a peer process.
type procSample struct {
	at  time.Time
	cpu float64 // utime+stime, seconds since the process started
	rss int64   // bytes
}

// cpuBetween interpolates the CPU seconds spent between from and to out of
// samples taken in time order. The load client reports how long its
// measured phase lasted, which excludes its warm-up, so the broker's CPU is
// taken over the same stretch rather than over the client's whole life.
// Times outside the sampled span are clamped to it.
func cpuBetween(samples []procSample, from, to time.Time) float64 {
	if len(samples) == 0 || !to.After(from) {
		return 0
	}
	return cpuAt(samples, to) - cpuAt(samples, from)
}

func cpuAt(samples []procSample, t time.Time) float64 {
	if !t.After(samples[0].at) {
		return samples[0].cpu
	}
	for i := 1; i < len(samples); i++ {
		a, b := samples[i-1], samples[i]
		if t.After(b.at) {
			continue
		}
		span := b.at.Sub(a.at)
		if span <= 0 {
			return b.cpu
		}
		frac := float64(t.Sub(a.at)) / float64(span)
		return a.cpu + frac*(b.cpu-a.cpu)
	}
	return samples[len(samples)-1].cpu
}

func peakRSS(samples []procSample) int64 {
	var peak int64
	for _, s := range samples {
		peak = max(peak, s.rss)
	}
	return peak
}

// sampler reads the CPU time and RSS of a process, or the sums over a
// cluster's processes, every interval until stopped.
type sampler struct {
	pids    []int
	mu      sync.Mutex
	samples []procSample
	cancel  context.CancelFunc
	done    chan struct{}
}

func startSampler(pids []int, interval time.Duration) *sampler {
	ctx, cancel := context.WithCancel(context.Background())
	s := &sampler{pids: pids, cancel: cancel, done: make(chan struct{})}
	s.take()
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.take()
			}
		}
	}()
	return s
}

func (s *sampler) take() {
	now := time.Now()
	var cpu float64
	var rss int64
	for _, pid := range s.pids {
		c, err1 := readProcCPU(pid)
		r, err2 := readProcRSS(pid)
		if err1 != nil || err2 != nil {
			return // a process is gone; the run reports that on its own
		}
		cpu, rss = cpu+c, rss+r
	}
	s.mu.Lock()
	s.samples = append(s.samples, procSample{at: now, cpu: cpu, rss: rss})
	s.mu.Unlock()
}

// stop takes a last sample and returns them all.
func (s *sampler) stop() []procSample {
	s.cancel()
	<-s.done
	s.take()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.samples
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
