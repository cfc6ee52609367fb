package perf

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// breakdown pairs each record with the Produce written after it was sent
// and the last record-carrying Fetch read before it was received, and
// leaves out records due before the measurement and small Fetch answers.
func TestTraceBreakdownPairsRecordsWithTheirRequests(t *testing.T) {
	origin := time.Unix(1000, 0)
	tr := newE2ETrace(origin)
	at := func(us int) time.Time { return origin.Add(time.Duration(us) * time.Microsecond) }
	rt := func(key int16, writeStart, readEnd, read int) {
		tr.mu.Lock()
		tr.reqs = append(tr.reqs, traceRequest{key: key, writeStart: time.Duration(writeStart) * time.Microsecond,
			readEnd: time.Duration(readEnd) * time.Microsecond, read: read})
		tr.mu.Unlock()
	}
	// Warmup record 0, due at 0: not measured.
	tr.sent(0, at(0), at(10))
	tr.received(0, at(900))
	rt(0, 20, 300, 60)
	// Record 1, due at 1000: sent 1100, written 1150, acknowledged
	// 1400; fetched (read) 1500, received 1520.
	tr.sent(1, at(1000), at(1100))
	rt(0, 1150, 1400, 60)
	tr.acked(1, at(1410))
	rt(1, 500, 1500, 1200)
	rt(1, 1501, 1510, 80) // an empty answer after it: not the one
	tr.received(1, at(1520))
	// Record 2, due 2000: everything 2000 µs later, but a slower Fetch.
	tr.sent(2, at(2000), at(2010))
	rt(0, 2030, 2200, 60)
	rt(1, 1600, 2800, 1200)
	tr.received(2, at(2900))

	got := tr.breakdown(500*time.Microsecond, 1024, []float64{100})
	want := map[string]time.Duration{ // the maximum of each step over records 1 and 2
		"total": 900, "pace": 100, "to wire": 50, "produce rt": 250, "to fetched": 770, "deliver": 100,
	}
	for i, name := range traceSteps {
		if w := want[name] * time.Microsecond; got[i][0] != w {
			t.Errorf("%s: max %v, want %v", name, got[i][0], w)
		}
	}
	var b strings.Builder
	tr.printBreakdown(&b, 500*time.Microsecond, 1024)
	if lines := strings.Split(strings.TrimSpace(b.String()), "\n"); len(lines) != 1+len(traceSteps) ||
		!strings.HasPrefix(lines[1], "total") || !strings.Contains(lines[1], "0.900") {
		t.Errorf("printed breakdown:\n%s", b.String())
	}
}

// OnBrokerE2E places the write start before the read end by the times kgo
// reports.
func TestTraceRequestTimes(t *testing.T) {
	tr := newE2ETrace(time.Now())
	tr.OnBrokerE2E(kgo.BrokerMetadata{}, 1, kgo.BrokerE2E{BytesRead: 10, TimeToWrite: time.Millisecond,
		ReadWait: 2 * time.Millisecond, TimeToRead: 3 * time.Millisecond})
	q := tr.reqs[0]
	if q.key != 1 || q.read != 10 || q.readEnd-q.writeStart != 6*time.Millisecond {
		t.Errorf("request %+v", q)
	}
}
