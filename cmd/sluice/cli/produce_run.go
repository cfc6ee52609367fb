package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// producer feeds input lines to the client and counts the outcomes, which
// arrive on the client's goroutines.
type producer struct {
	cl          *kgo.Client
	topic       string
	sep         []byte
	headers     []kgo.RecordHeader
	partition   int32         // -1: the client's partitioner decides
	timeout     time.Duration // bounds every wait: delivery, buffer room, flush
	maxBuffered int64         // the client's MaxBufferedRecords

	sent, ok, failed atomic.Int64
	errOnce          sync.Once
	firstErr         error
	// room is signalled by every outcome: an acknowledgement may make
	// room in a full send buffer.
	room chan struct{}
}

var errNoRoom = errors.New("no room in the send buffer")

func (p *producer) record(line []byte) *kgo.Record {
	// The record's own context stays uncancelled: Ctrl-C must not fail
	// records already handed to the client, which are still to be flushed.
	r := &kgo.Record{Topic: p.topic, Value: line, Headers: p.headers, Context: context.Background()}
	if p.partition >= 0 {
		r.Partition = p.partition
	}
	if len(p.sep) > 0 {
		if k, v, found := bytes.Cut(line, p.sep); found {
			r.Key, r.Value = k[:len(k):len(k)], v
		}
	}
	return r
}

func (p *producer) promise(_ *kgo.Record, err error) {
	if err == nil {
		p.ok.Add(1)
	} else {
		p.fail(err)
	}
	select {
	case p.room <- struct{}{}:
	default:
	}
}

// fail counts a record that was not produced, keeping the first error.
func (p *producer) fail(err error) {
	// firstErr is set before the count moves, so whoever sees a failure
	// counted also sees an error to report.
	p.errOnce.Do(func() { p.firstErr = err })
	p.failed.Add(1)
}

// produce hands one record to the client and reports whether to go on.
// Once the client holds maxBuffered records it waits for room, which only
// acknowledgements make. With idempotence (the default) the client never
// fails a record it has sent, whatever the delivery timeout, so against a
// broker that went away that wait would last forever: it is bounded by the
// timeout, and a wait that runs out stops the input.
//
// The wait is done here and not by Produce: the client fails a whole
// buffered batch when the context its first record was produced with ends,
// so a context that bounds only the wait would fail records the broker
// would have taken. Produce gets one that never ends.
func (p *producer) produce(ctx context.Context, line []byte) bool {
	p.sent.Add(1)
	if err := p.waitForRoom(ctx); err != nil {
		if errors.Is(err, errNoRoom) {
			p.fail(fmt.Errorf("%w within %s: the broker acknowledged nothing", errNoRoom, p.timeout))
			return false
		}
		p.fail(errors.New("interrupted while waiting for room in the send buffer"))
		return true // the caller sees ctx is done and stops
	}
	p.cl.Produce(context.Background(), p.record(line), p.promise)
	return true
}

// waitForRoom returns once fewer than maxBuffered records are outstanding
// besides the one about to be sent (counted in sent already), errNoRoom
// after the timeout, or ctx's error.
func (p *producer) waitForRoom(ctx context.Context) error {
	outstanding := func() int64 { return p.sent.Load() - 1 - p.ok.Load() - p.failed.Load() }
	if outstanding() < p.maxBuffered {
		return nil
	}
	timer := time.NewTimer(p.timeout)
	defer timer.Stop()
	for outstanding() >= p.maxBuffered {
		select {
		case <-p.room:
		case <-timer.C:
			return errNoRoom
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// flush waits up to the timeout for every record handed to the client; a
// second Ctrl-C (the abort channel) stops it at once.
func (p *producer) flush(ctx context.Context) {
	fctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	if abort := abortOf(ctx); abort != nil {
		go func() {
			select {
			case <-abort:
				cancel()
			case <-fctx.Done():
			}
		}()
	}
	_ = p.cl.Flush(fctx)
}

// run produces every line of in until the input ends, ctx is cancelled or
// the broker stops making room, waits for the outcome of every record sent
// (up to the timeout), and reports on stderr.
func (p *producer) run(ctx context.Context, in io.Reader, stderr io.Writer) (produceResult, error) {
	lines, readErr, stop := readLines(in)
	defer stop()

	var tick <-chan time.Time
	showProgress := isTerminal(stderr)
	if showProgress {
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		tick = t.C
	}
	interrupted, stalled := false, false
read:
	for !stalled {
		select {
		case <-ctx.Done():
			interrupted = true
			break read
		case line, more := <-lines:
			if !more {
				break read
			}
			if ctx.Err() != nil {
				// select picks at random among ready cases: a line read
				// after Ctrl-C is left unsent, like the rest of the input.
				interrupted = true
				break read
			}
			stalled = !p.produce(ctx, line)
		case <-tick:
			fmt.Fprintf(stderr, "\r%d records read, %d acknowledged, %d failed\x1b[K", p.sent.Load(), p.ok.Load(), p.failed.Load())
		}
	}
	interrupted = interrupted || ctx.Err() != nil
	p.flush(ctx)
	if showProgress {
		fmt.Fprint(stderr, "\r\x1b[K")
	}
	return p.summary(ctx, stderr, interrupted, stalled, readErr)
}

// summary counts the outcome, prints it and picks the exit: 130 (143) when
// interrupted, 1 when a record was not acknowledged or input failed, else 0.
func (p *producer) summary(ctx context.Context, stderr io.Writer, interrupted, stalled bool, readErr func() error) (produceResult, error) {
	sent := p.sent.Load()
	res := produceResult{Topic: p.topic, Produced: p.ok.Load(), Failed: p.failed.Load(), Interrupted: interrupted}
	var errs []string
	if res.Failed > 0 {
		msg := p.firstErr.Error()
		res.FirstError = &msg
		errs = append(errs, fmt.Sprintf("%d failed, the first with: %s", res.Failed, msg))
	}
	if pending := sent - res.Produced - res.Failed; pending > 0 {
		msg := fmt.Sprintf("%d not acknowledged within %s", pending, p.timeout)
		if res.FirstError == nil {
			res.FirstError = &msg
		}
		res.Failed += pending
		errs = append(errs, msg)
	}
	if stalled {
		errs = append(errs, "the rest of the input was not read")
	} else if !interrupted {
		if err := readErr(); err != nil {
			errs = append(errs, fmt.Sprintf("reading input: %v", err))
		}
	}
	if interrupted {
		detail := fmt.Sprintf("%d failed", res.Failed)
		if len(errs) > 0 {
			detail = strings.Join(errs, "; ")
		}
		fmt.Fprintf(stderr, "interrupted: produced %d of %s to %q; %s; the rest of the input was not read\n",
			res.Produced, plural(sent, "record"), p.topic, detail)
		return res, exitStatus{interruptExit(ctx)}
	}
	if len(errs) > 0 {
		return res, fmt.Errorf("produced %d of %s to %q; %s", res.Produced, plural(sent, "record"), p.topic, strings.Join(errs, "; "))
	}
	fmt.Fprintf(stderr, "produced %s to %q\n", plural(res.Produced, "record"), p.topic)
	return res, nil
}

// plural writes a count with its noun: "1 record", "2 records".
func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// readLines reads in on its own goroutine, so that the producer can notice
// Ctrl-C even while a read from a terminal blocks. Each line is a fresh
// slice (the client keeps it until the record is acknowledged). readErr is
// valid once lines is closed; stop releases the goroutine if the caller
// quits early (a read already blocked stays blocked until the process
// exits, which is harmless).
func readLines(in io.Reader) (lines <-chan []byte, readErr func() error, stop func()) {
	ch := make(chan []byte, 256)
	done := make(chan struct{})
	var err error
	go func() {
		defer close(ch)
		br := bufio.NewReaderSize(in, 64<<10)
		for {
			line, rerr := br.ReadBytes('\n')
			if n := len(line); n > 0 {
				if line[n-1] == '\n' {
					line = line[:n-1]
				}
				select {
				case ch <- line:
				case <-done:
					return
				}
			}
			if rerr != nil {
				if !errors.Is(rerr, io.EOF) {
					err = rerr
				}
				return
			}
		}
	}()
	var once sync.Once
	return ch, func() error { return err }, func() { once.Do(func() { close(done) }) }
}
