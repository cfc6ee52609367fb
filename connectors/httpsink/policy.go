package main

import (
	"strconv"
	"strings"
	"time"
)

// The sink's decisions, kept free of I/O and clocks so they can be tested
// as tables: when a partition's buffer makes a batch, what to do with an
// HTTP answer, how long to wait before a retry, the idempotency key of a
// batch and which offsets are safe to commit. The task (task.go) owns the
// sockets and the time.

// item is one encoded record waiting in its partition's buffer.
type item struct {
	offset  int64     // the record's original Kafka offset
	body    []byte    // its encoded element of a request body
	arrived time.Time // when Put buffered it: linger counts from here
	put     uint64    // which Put call brought it (see task.putSeq)
	index   int       // its index in that Put's batch
}

// batchLimits bound one request: at most maxRecords records and (unless a
// single record is larger) maxBytes bytes of encoded records; a partial
// batch waits at most linger for more.
type batchLimits struct {
	maxRecords int
	maxBytes   int
	linger     time.Duration
}

// partBuffer is one partition's records in offset order. The head batch
// stays in the buffer while it is in flight, so retries resend exactly
// the same records and PreCommit never passes them.
type partBuffer struct {
	items []item
	bytes int
}

func (b *partBuffer) add(it item) {
	b.items = append(b.items, it)
	b.bytes += len(it.body)
}

// ready reports whether the buffer holds a batch to send now: a full one
// (by count or bytes) or one whose oldest record has lingered long enough.
func (b *partBuffer) ready(now time.Time, l batchLimits) bool {
	if len(b.items) == 0 {
		return false
	}
	if len(b.items) >= l.maxRecords || b.bytes >= l.maxBytes {
		return true
	}
	return !now.Before(b.items[0].arrived.Add(l.linger))
}

// head is the next batch: the longest prefix within the limits, and never
// empty when the buffer is not.
func (b *partBuffer) head(l batchLimits) []item {
	n, size := 0, 0
	for n < len(b.items) && n < l.maxRecords {
		if n > 0 && size+len(b.items[n].body) > l.maxBytes {
			break
		}
		size += len(b.items[n].body)
		n++
	}
	return b.items[:n]
}

// drop removes the first n records: their batch was acknowledged or
// rejected.
func (b *partBuffer) drop(n int) {
	for _, it := range b.items[:n] {
		b.bytes -= len(it.body)
	}
	b.items = append(b.items[:0:0], b.items[n:]...)
}

// safeOffset is the offset to commit for the partition given the next
// offset the worker has delivered: everything before the first record
// still buffered (or in flight) has been acknowledged or reported, and
// with nothing buffered everything delivered has.
func (b *partBuffer) safeOffset(delivered int64) int64 {
	if len(b.items) > 0 && b.items[0].offset < delivered {
		return b.items[0].offset
	}
	return delivered
}

// idempotencyKey names a batch by what it carries, so it is the same on
// every retry and a receiver can drop a batch it has already taken:
// <connector>-<topic>-<partition>-<first offset>-<last offset>.
func idempotencyKey(connector, topic string, partition int32, first, last int64) string {
	var sb strings.Builder
	sb.WriteString(connector)
	sb.WriteByte('-')
	sb.WriteString(topic)
	sb.WriteByte('-')
	sb.WriteString(strconv.Itoa(int(partition)))
	sb.WriteByte('-')
	sb.WriteString(strconv.FormatInt(first, 10))
	sb.WriteByte('-')
	sb.WriteString(strconv.FormatInt(last, 10))
	return sb.String()
}

// outcome is what to do with a batch after an attempt.
type outcome int

const (
	delivered outcome = iota // 2xx: done, commit past it
	retry                    // try again after a delay
	rejected                 // the receiver refuses these records: report them failed
	giveUp                   // retries exhausted: fail the task
)

func (o outcome) String() string {
	return [...]string{"delivered", "retry", "rejected", "give up"}[o]
}

// retryPolicy is the schedule of retries: jittered exponential backoff
// from base to max, at most maxRetries retries (-1 = no limit).
type retryPolicy struct {
	base, max  time.Duration
	maxRetries int
}

// maxRetryAfter caps a server's Retry-After, so that a wrong date cannot
// stall a partition for days.
const maxRetryAfter = 10 * time.Minute

// retriableStatus reports whether an HTTP status is worth retrying: 408
// Request Timeout, 429 Too Many Requests and every 5xx. Other 4xx (and
// anything else not 2xx) say the request itself is wrong.
func retriableStatus(status int) bool {
	return status == 408 || status == 429 || status >= 500
}

// decide classifies attempt number attempt (0 for the first) of a batch:
// status is the HTTP status, or 0 when the request failed on the network;
// retryAfter is the answer's Retry-After header; jitter is a uniform
// random number in [0, 1) the caller draws.
func (p retryPolicy) decide(attempt, status int, retryAfter string, now time.Time, jitter float64) (outcome, time.Duration) {
	switch {
	case status >= 200 && status < 300:
		return delivered, 0
	case status != 0 && !retriableStatus(status):
		return rejected, 0
	}
	if p.maxRetries >= 0 && attempt >= p.maxRetries {
		return giveUp, 0
	}
	if d, ok := parseRetryAfter(retryAfter, now); ok {
		return retry, d
	}
	return retry, p.backoff(attempt, jitter)
}

// backoff is the delay before retry number attempt+1: base·2^attempt
// capped at max, of which a random half is kept ("equal jitter"), so
// that tasks failing together do not retry together yet always wait at
// least half the schedule.
func (p retryPolicy) backoff(attempt int, jitter float64) time.Duration {
	d := p.base
	for i := 0; i < attempt && d < p.max; i++ {
		d *= 2
	}
	d = min(d, p.max)
	half := d / 2
	return half + time.Duration(float64(d-half)*jitter)
}

// parseRetryAfter reads a Retry-After header (RFC 9110 §10.2.3): a number
// of seconds or an HTTP date. A date in the past means retry now; an
// unreadable value is ignored (ok false).
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter, true
		}
		return time.Duration(secs) * time.Second, true
	}
	for _, layout := range []string{time.RFC1123, time.RFC850, time.ANSIC} {
		if at, err := time.Parse(layout, v); err == nil {
			return min(max(at.Sub(now), 0), maxRetryAfter), true
		}
	}
	return 0, false
}
