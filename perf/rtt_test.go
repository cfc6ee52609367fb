package perf

import (
	"bytes"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRTTOptions(t *testing.T) {
	o := testOptions(t, modeRTT, "--records", "10")
	if !slices.Equal(o.kinds, rttKinds) || o.group != rttGroup || o.recordSize != rttRecordSize || !o.create ||
		o.acks != "all" || !o.idempotent || o.linger != 0 || o.clients != 1 || o.effectiveInflight() != 1 {
		t.Errorf("rtt defaults: %+v", o)
	}
	o = testOptions(t, modeRTT, "--duration", "1s", "--kinds", " metadata,FETCH,Metadata ", "--group", "g", "--record-size", "7")
	if !slices.Equal(o.kinds, []string{rttMetadata, rttFetch}) || o.group != "g" || o.recordSize != 7 {
		t.Errorf("--kinds keeps the given order once per kind, any case: %+v", o)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"rtt", "--topic", "t"}, "--records N or --duration D"},
		{[]string{"rtt", "--topic", "t", "--records", "1", "--kinds", "Produce,ListOffsets"}, `unknown request kind "ListOffsets"`},
		{[]string{"rtt", "--topic", "t", "--records", "1", "--kinds", ","}, "--kinds: no request kind given"},
		{[]string{"rtt", "--topic", "t", "--records", "1", "--group", ""}, "--group must not be empty"},
		{[]string{"rtt", "--topic", "t", "--records", "1", "--record-size", "0"}, "--record-size must be between 1 and"},
		// One request in flight is the point of the mode: no knob for more.
		{[]string{"rtt", "--topic", "t", "--records", "1", "--clients", "2"}, "flag provided but not defined: -clients"},
		{[]string{"rtt", "--topic", "t", "--records", "1", "--acks", "1"}, "flag provided but not defined: -acks"},
	} {
		code, stdout, stderr := runCLI(tc.args...)
		if first, _, _ := strings.Cut(stderr, "\n"); code != exitUsage || stdout != "" || !strings.Contains(first, tc.want) {
			t.Errorf("%q: exit %d, stdout %q, first stderr line %q; want exit 2 and %q", tc.args, code, stdout, first, tc.want)
		}
	}
	code, stdout, _ := runCLI("rtt", "--help")
	if code != exitOK || !strings.Contains(stdout, "--kinds LIST") || strings.Contains(stdout, "--clients") {
		t.Errorf("rtt --help: exit %d, stdout %q", code, stdout)
	}
}

func TestRTTAgainstKfake(t *testing.T) {
	brokers := newFake(t)
	r := runJSON(t, "rtt", "--brokers", brokers, "--topic", "rtt", "--records", "50", "--warmup", "100ms")
	if r.Mode != modeRTT || r.Records != 200 || r.Errors != 0 || r.FirstError != "" || r.Bytes != 50*rttRecordSize {
		t.Fatalf("rtt: %+v", r)
	}
	if r.Latency != nil || r.Config.MaxInflight != 1 || r.Config.Acks != "all" || r.Config.Clients != 1 || r.Seconds <= 0 {
		t.Fatalf("rtt result: %+v", r)
	}
	if len(r.RTT) != len(rttKinds) {
		t.Fatalf("rtt kinds: %v", r.RTT)
	}
	for _, k := range rttKinds {
		l := r.RTT[k]
		if l == nil || l.Count != 50 || l.Errors != 0 || l.Seconds <= 0 {
			t.Fatalf("%s: %+v", k, l)
		}
		if !(l.P50 > 0 && l.P50 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
			t.Fatalf("%s: implausible latency %+v", k, l.Latency)
		}
	}
	// The record Fetch asks for exists, so the answer must not wait for
	// MaxWait.
	if p50 := r.RTT[rttFetch].P50; p50 >= float64(rttMaxWait/time.Millisecond)/2 {
		t.Errorf("Fetch p50 %.3f ms: the broker waited for MaxWait", p50)
	}

	// A second run on the same topic, a subset of kinds, bounded by time.
	d := runJSON(t, "rtt", "--brokers", brokers, "--topic", "rtt", "--duration", "200ms", "--kinds", "offsetcommit,fetch")
	if len(d.RTT) != 2 || d.RTT[rttFetch] == nil || d.RTT[rttOffsetCommit] == nil || d.Errors != 0 || d.Bytes != 0 {
		t.Fatalf("rtt --kinds offsetcommit,fetch: %+v", d)
	}
	for k, l := range d.RTT {
		if l.Count == 0 || l.Seconds < 0.19 || l.Seconds > 2 {
			t.Errorf("%s phase of --duration 200ms: %+v", k, l)
		}
	}
}

func TestRTTHumanSummary(t *testing.T) {
	brokers := newFake(t)
	code, stdout, stderr := runCLI("rtt", "--brokers", brokers, "--topic", "human", "--records", "5", "--kinds", "Produce,Metadata")
	if code != exitOK || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{"rtt (topic human, one request in flight, 100-byte records, acks all)",
		"round trip ms", "p99.9", "Produce ", "Metadata "} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
	if !regexp.MustCompile(`(?m)^requests +10$`).MatchString(stdout) {
		t.Errorf("summary does not count 10 requests:\n%s", stdout)
	}
	if strings.Contains(stdout, "Fetch") {
		t.Errorf("summary shows a kind that did not run:\n%s", stdout)
	}
}

func TestRTTSummaryOrder(t *testing.T) {
	o := testOptions(t, modeRTT, "--records", "1", "--kinds", "OffsetCommit,Produce")
	h := newHist()
	h.Record(250 * time.Microsecond)
	r := newResult(o, outcome{partitions: 1, records: 2, seconds: 1,
		rtt: []kindOutcome{{kind: rttOffsetCommit, lat: h, seconds: 0.5}, {kind: rttProduce, lat: h, errors: 3, seconds: 0.5}}})
	if r.RTT[rttProduce].Errors != 3 || r.RTT[rttOffsetCommit].P99 != 0.25 || r.RTT[rttOffsetCommit].Seconds != 0.5 {
		t.Fatalf("rtt_ms: %+v", r.RTT)
	}
	var buf bytes.Buffer
	if err := writeSummary(&buf, r); err != nil {
		t.Fatal(err)
	}
	// Rows follow the tool's order of kinds, not the map's.
	if s := buf.String(); strings.Index(s, "Produce") > strings.Index(s, "OffsetCommit") {
		t.Errorf("rows out of order:\n%s", s)
	}
}
