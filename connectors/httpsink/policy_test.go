package main

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 5, 2, 0, 0, 0, time.UTC)

func items(sizes ...int) []item {
	out := make([]item, len(sizes))
	for i, n := range sizes {
		out[i] = item{offset: int64(10 + i), body: make([]byte, n), arrived: t0.Add(time.Duration(i) * time.Millisecond)}
	}
	return out
}

func TestBatchReadiness(t *testing.T) {
	l := batchLimits{maxRecords: 3, maxBytes: 100, linger: 50 * time.Millisecond}
	for _, tc := range []struct {
		name  string
		sizes []int
		now   time.Duration // after t0
		ready bool
		head  int
	}{
		{"empty", nil, time.Hour, false, 0},
		{"one record, lingering", []int{10}, 49 * time.Millisecond, false, 1},
		{"one record, linger over", []int{10}, 50 * time.Millisecond, true, 1},
		{"full by count", []int{1, 1, 1, 1}, 0, true, 3},
		{"full by bytes", []int{60, 40}, 0, true, 2},
		{"bytes split the batch", []int{60, 50, 10}, 0, true, 1},
		{"a record over the byte limit goes alone", []int{500, 1}, 0, true, 1},
	} {
		b := &partBuffer{}
		for _, it := range items(tc.sizes...) {
			b.add(it)
		}
		if got := b.ready(t0.Add(tc.now), l); got != tc.ready {
			t.Errorf("%s: ready %v, want %v", tc.name, got, tc.ready)
		}
		if got := len(b.head(l)); got != tc.head {
			t.Errorf("%s: head of %d records, want %d", tc.name, got, tc.head)
		}
	}
	// Linger 0: anything buffered is ready.
	b := &partBuffer{}
	b.add(item{arrived: t0, body: []byte("x")})
	if !b.ready(t0, batchLimits{maxRecords: 10, maxBytes: 10}) {
		t.Error("linger 0: a buffered record is not ready at once")
	}
}

func TestSafeOffsetStopsAtTheFirstUnacknowledgedRecord(t *testing.T) {
	b := &partBuffer{}
	if got := b.safeOffset(42); got != 42 {
		t.Fatalf("empty buffer: %d, want the delivered 42", got)
	}
	for _, it := range items(1, 1, 1) { // offsets 10, 11, 12
		b.add(it)
	}
	if got := b.safeOffset(13); got != 10 {
		t.Fatalf("three buffered: %d, want 10", got)
	}
	b.drop(2)
	if got, bytes := b.safeOffset(13), b.bytes; got != 12 || bytes != 1 {
		t.Fatalf("after acknowledging two: offset %d bytes %d, want 12 and 1", got, bytes)
	}
	b.drop(1)
	if got := b.safeOffset(13); got != 13 {
		t.Fatalf("all acknowledged: %d, want 13", got)
	}
}

func TestRetryDecisions(t *testing.T) {
	p := retryPolicy{base: 100 * time.Millisecond, max: time.Second, maxRetries: 3}
	date := t0.Add(7 * time.Second).Format("Mon, 02 Jan 2006 15:04:05 GMT")
	for _, tc := range []struct {
		name       string
		attempt    int
		status     int
		retryAfter string
		jitter     float64
		out        outcome
		delay      time.Duration
	}{
		{"200", 0, 200, "", 0, delivered, 0},
		{"204", 2, 204, "", 0, delivered, 0},
		{"400 is the request's fault", 0, 400, "", 0, rejected, 0},
		{"404", 0, 404, "", 0, rejected, 0},
		{"413", 0, 413, "", 0, rejected, 0},
		{"network error", 0, 0, "", 0, retry, 50 * time.Millisecond},
		{"408", 0, 408, "", 0.999999, retry, 100 * time.Millisecond},
		{"503 doubles", 1, 503, "", 0, retry, 100 * time.Millisecond},
		{"500 doubles again", 2, 500, "", 1, retry, 400 * time.Millisecond},
		{"backoff capped", 2, 502, "", 0, retry, 200 * time.Millisecond},
		{"429 Retry-After seconds", 0, 429, "3", 0, retry, 3 * time.Second},
		{"503 Retry-After date", 0, 503, date, 0, retry, 7 * time.Second},
		{"Retry-After unreadable: backoff", 0, 429, "soon", 0, retry, 50 * time.Millisecond},
		{"retries exhausted", 3, 503, "1", 0, giveUp, 0},
		{"exhausted on the network", 3, 0, "", 0, giveUp, 0},
		{"a rejection is not retried even when exhausted", 3, 400, "", 0, rejected, 0},
	} {
		pp := p
		if tc.name == "backoff capped" {
			pp.max = 400 * time.Millisecond
		}
		out, d := pp.decide(tc.attempt, tc.status, tc.retryAfter, t0, tc.jitter)
		if out != tc.out || (tc.delay != 0 && (d < tc.delay-time.Millisecond || d > tc.delay)) {
			t.Errorf("%s: %v after %v, want %v after %v", tc.name, out, d, tc.out, tc.delay)
		}
	}
	forever := retryPolicy{base: time.Millisecond, max: time.Second, maxRetries: -1}
	if out, _ := forever.decide(1000, 503, "", t0, 0); out != retry {
		t.Errorf("max.retries=-1: %v after 1000 attempts, want retry", out)
	}
}

func TestBackoffGrowsAndIsJittered(t *testing.T) {
	p := retryPolicy{base: 100 * time.Millisecond, max: 5 * time.Second}
	for attempt, want := range []time.Duration{100, 200, 400, 800, 1600, 3200, 5000, 5000} {
		want *= time.Millisecond
		if attempt >= 6 {
			want = 5 * time.Second
		}
		lo, hi := p.backoff(attempt, 0), p.backoff(attempt, 0.999999)
		if lo != want/2 || hi < want-time.Millisecond || hi > want {
			t.Errorf("attempt %d: backoff in [%v, %v], want [%v, %v]", attempt, lo, hi, want/2, want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{" 120 ", 2 * time.Minute, true},
		{"-1", 0, false},
		{"99999999", maxRetryAfter, true},
		{t0.Add(90 * time.Second).Format("Mon, 02 Jan 2006 15:04:05 GMT"), 90 * time.Second, true},
		{t0.Add(-time.Hour).Format("Mon, 02 Jan 2006 15:04:05 GMT"), 0, true},
		{t0.Add(48 * time.Hour).Format("Mon, 02 Jan 2006 15:04:05 GMT"), maxRetryAfter, true},
		{t0.Add(5 * time.Second).Format("Monday, 02-Jan-06 15:04:05 GMT"), 5 * time.Second, true},
		{t0.Add(5 * time.Second).Format(time.ANSIC), 5 * time.Second, true},
		{"in a while", 0, false},
	} {
		got, ok := parseRetryAfter(tc.in, t0)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Retry-After %q: %v %v, want %v %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestIdempotencyKeyNamesTheBatch(t *testing.T) {
	if got := idempotencyKey("orders-http", "orders", 3, 100, 149); got != "orders-http-orders-3-100-149" {
		t.Fatalf("key %q", got)
	}
}
