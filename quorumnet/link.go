package quorumnet

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-io/sluice/netio"
)

// call is one request on its way: an envelope (done nil) or a fetch,
// whose caller waits on done.
type call struct {
	frame []byte
	done  chan result // buffered: the reader never blocks on a caller that left
	// Guarded by link.mu.
	corr      int32
	written   bool // in pending on the current connection
	abandoned bool // the fetch's caller left; not to be written
}

type result struct {
	payload []byte
	err     error
}

func (cl *call) finish(r result) {
	if cl.done != nil {
		cl.done <- r
	}
}

// link is one connection to one peer for one channel, kept open by run.
type link struct {
	c     *Client
	to    int32
	addr  string
	ch    Channel
	log   *slog.Logger
	queue chan *call

	mu      sync.Mutex
	up      bool
	failed  error // set while down after a failure, until a connection is up
	conn    net.Conn
	pending map[int32]*call // written on conn, not answered yet
	corr    int32
	aborted bool // conn was closed by abandon, not lost
	// carry holds calls taken from the queue after abandon closed the
	// connection, for the next one.
	carry []*call
}

func newLink(c *Client, to int32, addr string, ch Channel, queue int) *link {
	return &link{c: c, to: to, addr: addr, ch: ch, queue: make(chan *call, queue),
		log: c.cfg.Logger.With("peer", to, "addr", addr, "channel", ch.String())}
}

// enqueue hands cl to the writer. An envelope goes only on a connection
// that is up; a fetch may also wait for the first one. It fails when the
// link is down after a failure or its queue is full.
func (l *link) enqueue(cl *call, waitFirst bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.up && (!waitFirst || l.failed != nil) {
		if l.failed != nil {
			return l.failed
		}
		return fmt.Errorf("%w: node %d at %s: not connected yet", ErrUnreachable, l.to, l.addr)
	}
	// Under mu, so down, which drains the queue under mu too, cannot
	// miss a call enqueued while the connection was up.
	select {
	case l.queue <- cl:
		return nil
	default:
		return fmt.Errorf("quorumnet: node %d: %d %s requests queued already", l.to, cap(l.queue), l.ch)
	}
}

// abandon is a fetch's caller leaving. A fetch not yet written is
// skipped; one written closes the connection, which cancels it on the
// receiver (see Client.Fetch).
func (l *link) abandon(cl *call) {
	l.mu.Lock()
	defer l.mu.Unlock()
	cl.abandoned = true
	if cl.written && l.conn != nil && l.pending[cl.corr] == cl {
		// Later fetches wait for the next connection instead of
		// failing on this one.
		l.aborted, l.up = true, false
		_ = l.conn.Close()
	}
}

// run keeps the link connected until the client closes.
func (l *link) run() {
	cfg := &l.c.cfg
	backoff := cfg.MinBackoff
	for {
		conn, err := l.dial()
		if err == nil {
			var answered bool
			answered, err = l.serve(conn)
			if l.c.ctx.Err() != nil {
				l.down(ErrClosed)
				return
			}
			if answered {
				// The peer worked: whatever broke, redial at once.
				backoff = cfg.MinBackoff
				continue
			}
		} else {
			err = fmt.Errorf("%w: node %d at %s: %v", ErrUnreachable, l.to, l.addr, err)
			l.down(err)
		}
		if l.c.ctx.Err() != nil {
			l.down(ErrClosed)
			return
		}
		l.log.Debug("quorum peer unreachable; retrying", "err", err, "backoff", backoff)
		t := time.NewTimer(backoff + rand.N(backoff/4+1))
		select {
		case <-t.C:
		case <-l.c.ctx.Done():
			t.Stop()
			l.down(ErrClosed)
			return
		}
		backoff = min(2*backoff, cfg.MaxBackoff)
	}
}

func (l *link) dial() (net.Conn, error) {
	ctx, cancel := context.WithTimeout(l.c.ctx, l.c.cfg.DialTimeout)
	defer cancel()
	var d net.Dialer
	return d.DialContext(ctx, "tcp", l.addr)
}

// serve runs one connection until it fails or the client closes, and
// reports whether the peer answered anything on it.
func (l *link) serve(conn net.Conn) (bool, error) {
	l.mu.Lock()
	wasFailed := l.failed != nil
	l.up, l.failed, l.conn, l.pending, l.aborted = true, nil, conn, map[int32]*call{}, false
	l.mu.Unlock()
	if wasFailed {
		l.log.Info("quorum peer connected")
	}
	var answered atomic.Bool
	readErr := make(chan error, 1)
	go func() { readErr <- l.read(conn, &answered) }()
	readDone, err := l.write(conn, readErr)
	_ = conn.Close()
	if !readDone {
		// The reader ends once conn is closed; its error follows from ours.
		if rerr := <-readErr; rerr != nil {
			l.log.Debug("quorum connection reader stopped", "err", rerr)
		}
	}
	l.down(err)
	return answered.Load(), err
}

// write sends what the queue holds, several frames per system call when
// they queued up, until the reader fails, a write fails or the client
// closes.
func (l *link) write(conn net.Conn, readErr <-chan error) (readDone bool, err error) {
	var bufs net.Buffers
	l.mu.Lock()
	carried := l.carry
	l.carry = nil
	l.mu.Unlock()
	for {
		var cl *call
		if len(carried) > 0 {
			cl, carried = carried[0], carried[1:]
		} else {
			select {
			case <-l.c.ctx.Done():
				return false, ErrClosed
			case err := <-readErr:
				return true, err
			case cl = <-l.queue:
			}
		}
		bufs, envelopes, size := bufs[:0], 0, 0
		for {
			if l.register(conn, cl) {
				bufs = append(bufs, cl.frame)
				size += len(cl.frame)
				if cl.done == nil {
					envelopes++
				}
			}
			if size >= 64<<10 || len(bufs) >= 128 {
				break
			}
			if len(carried) > 0 {
				cl, carried = carried[0], carried[1:]
				continue
			}
			select {
			case cl = <-l.queue:
				continue
			default:
			}
			break
		}
		if len(bufs) == 0 {
			continue
		}
		_ = conn.SetWriteDeadline(time.Now().Add(l.c.cfg.IOTimeout))
		if _, err := bufs.WriteTo(conn); err != nil {
			return false, fmt.Errorf("%w: node %d at %s: %v", ErrUnreachable, l.to, l.addr, err)
		}
		l.c.stats.sent.Add(uint64(envelopes))
	}
}

// register gives cl its correlation id and puts it in flight, unless its
// caller left.
func (l *link) register(conn net.Conn, cl *call) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if cl.abandoned {
		return false
	}
	if l.aborted {
		l.carry = append(l.carry, cl)
		return false
	}
	l.corr++
	cl.corr, cl.written = l.corr, true
	binary.BigEndian.PutUint32(cl.frame[corrOffset:], uint32(cl.corr))
	l.pending[cl.corr] = cl
	if len(l.pending) == 1 {
		_ = conn.SetReadDeadline(time.Now().Add(l.c.cfg.IOTimeout))
	}
	return true
}

// read matches answers to the calls in flight until the connection fails.
// The read deadline runs only while something is in flight, so an idle
// connection stays open and a peer that stops answering is found within
// IOTimeout.
func (l *link) read(conn net.Conn, answered *atomic.Bool) error {
	fr := netio.NewFrameReader(bufio.NewReaderSize(conn, 64<<10), l.c.cfg.MaxResponseBytes)
	for {
		payload, err := fr.Next()
		if err != nil {
			return fmt.Errorf("%w: node %d at %s: %v", ErrUnreachable, l.to, l.addr, err)
		}
		corr, body, err := netio.ReadResponseHeader(payload, APIKey, APIVersion)
		if err != nil {
			return fmt.Errorf("%w: node %d at %s: %v", ErrUnreachable, l.to, l.addr, err)
		}
		l.mu.Lock()
		cl := l.pending[corr]
		delete(l.pending, corr)
		if len(l.pending) == 0 {
			_ = conn.SetReadDeadline(time.Time{})
		} else {
			_ = conn.SetReadDeadline(time.Now().Add(l.c.cfg.IOTimeout))
		}
		l.mu.Unlock()
		if cl == nil {
			return fmt.Errorf("%w: node %d at %s answered correlation id %d, which is not in flight", ErrUnreachable, l.to, l.addr, corr)
		}
		resp, err := ParseResponse(body)
		if err != nil {
			err = fmt.Errorf("%w: node %d at %s: %v", ErrUnreachable, l.to, l.addr, err)
			cl.finish(result{err: err})
			return err
		}
		answered.Store(true)
		switch {
		case cl.done != nil && resp.ErrorCode != 0:
			cl.finish(result{err: fmt.Errorf("quorumnet: node %d refused the fetch: %w", l.to, resp.Err())})
		case cl.done != nil:
			cl.finish(result{payload: resp.Payload})
		case resp.ErrorCode != 0:
			l.c.stats.refused.Add(1)
			l.log.Debug("quorum peer refused an envelope", "err", resp.Err())
		}
	}
}

// down ends the current connection (if any): the calls in flight and
// queued fail with err, queued envelopes are dropped. A connection closed
// by abandon leaves the link waiting for its next one rather than failed,
// so fetches meanwhile wait instead of failing at once.
func (l *link) down(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	wasUp, aborted := l.up, l.aborted
	for _, cl := range l.pending {
		cl.finish(result{err: err})
	}
	l.up, l.conn, l.pending, l.aborted = false, nil, nil, false
	if aborted && !errors.Is(err, ErrClosed) {
		return // the queue and carry wait for the next connection
	}
	if wasUp && !errors.Is(err, ErrClosed) {
		l.log.Warn("quorum peer connection lost", "err", err)
	} else if l.failed == nil && !errors.Is(err, ErrClosed) {
		l.log.Info("cannot reach quorum peer; retrying", "err", err)
	}
	l.failed = err
	for _, cl := range l.carry {
		cl.finish(result{err: err})
	}
	l.carry = nil
	for {
		select {
		case cl := <-l.queue:
			if cl.done == nil {
				l.c.stats.dropped.Add(1)
			}
			cl.finish(result{err: err})
		default:
			return
		}
	}
}
