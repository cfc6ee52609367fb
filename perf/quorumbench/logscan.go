package main

import (
	"bufio"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// The nodes log in slog's text format, each line starting with
// time=2006-01-02T15:04:05.000Z. The benchmark reads those logs for what
// DescribeQuorum and Metadata do not say: how often the controller fenced
// a broker whose session expired, and, when something fails, the warnings
// that came before.

// fencedMsg is the active controller's line for a broker whose session
// expired (broker/broker_heartbeat.go).
const fencedMsg = `msg="broker fenced: no heartbeat within broker.session.timeout.ms`

// lineTime is the time= field at the start of a log line.
func lineTime(line string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(line, "time=")
	if !ok {
		return time.Time{}, false
	}
	if i := strings.IndexByte(rest, ' '); i >= 0 {
		rest = rest[:i]
	}
	t, err := time.Parse(time.RFC3339Nano, rest)
	return t, err == nil
}

// matchingLines returns the lines of r holding substr and logged at or
// after since (a line without a time goes with the last time seen before
// it).
func matchingLines(r io.Reader, substr string, since time.Time) []string {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var last time.Time
	var out []string
	for sc.Scan() {
		line := sc.Text()
		if t, ok := lineTime(line); ok {
			last = t
		}
		if !last.Before(since) && strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return out
}

// fencedIn counts, per broker id, the sessions expired since t in the
// given controller logs.
func fencedIn(paths []string, since time.Time) map[int32]int {
	out := map[int32]int{}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		for _, line := range matchingLines(f, fencedMsg, since) {
			out[brokerIDField(line)]++
		}
		f.Close()
	}
	return out
}

// brokerIDField is a line's broker_id=N, -1 when absent.
func brokerIDField(line string) int32 {
	_, rest, ok := strings.Cut(line, " broker_id=")
	if !ok {
		return -1
	}
	if i := strings.IndexByte(rest, ' '); i >= 0 {
		rest = rest[:i]
	}
	id, err := strconv.ParseInt(rest, 10, 32)
	if err != nil {
		return -1
	}
	return int32(id)
}

// importantTail is the last n warning, error and process-start lines of
// r: what a failure report needs, without the per-partition info lines a
// node with thousands of partitions writes.
func importantTail(r io.Reader, n int) []string {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var out []string
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, " level=WARN ") || strings.Contains(line, " level=ERROR ") || strings.HasPrefix(line, "=== ") {
			if len(line) > 400 {
				line = line[:400] + "…"
			}
			out = append(out, line)
			if len(out) > 4*n {
				out = append(out[:0], out[len(out)-n:]...)
			}
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}
