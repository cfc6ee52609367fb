package quorumnet

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-io/sluice/metarepl"
	"github.com/sluice-io/sluice/netio"
	"github.com/sluice-io/sluice/voter"
)

// Config is what a Client needs.
type Config struct {
	// NodeID is this node's id, sent as the From of every request.
	NodeID int32
	// Peers maps each voter's node id to the host:port of its CONTROLLER
	// listener (controller.quorum.voters). NodeID's own entry, if any, is
	// skipped: a voter talks to itself without the network.
	Peers map[int32]string
	// ClientID is the request header's client id (default
	// "sluice-quorum-<NodeID>"), which the receiver logs.
	ClientID string
	// QueueSize bounds the envelopes waiting to be written to one peer
	// (default 256); Send drops beyond it.
	QueueSize int
	// MinBackoff and MaxBackoff bound the wait between two failed
	// connection attempts to a peer, doubling from one to the other
	// (defaults 50ms and 2s).
	MinBackoff, MaxBackoff time.Duration
	// DialTimeout bounds one connection attempt (default 2s).
	DialTimeout time.Duration
	// IOTimeout is how long a write may take, and how long a peer may
	// leave a written request unanswered before the connection is taken
	// for dead (default 15s). It must exceed the longest fetch long poll.
	IOTimeout time.Duration
	// MaxResponseBytes bounds one answer's frame (default
	// netio.DefaultMaxRequestBytes).
	MaxResponseBytes int32
	// Logger receives connection state changes; nil discards them.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.ClientID == "" {
		c.ClientID = fmt.Sprintf("sluice-quorum-%d", c.NodeID)
	}
	setDefault(&c.QueueSize, 256)
	setDefault(&c.MinBackoff, 50*time.Millisecond)
	setDefault(&c.MaxBackoff, 2*time.Second)
	setDefault(&c.DialTimeout, 2*time.Second)
	setDefault(&c.IOTimeout, 15*time.Second)
	setDefault(&c.MaxResponseBytes, netio.DefaultMaxRequestBytes)
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = c.MinBackoff
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

func setDefault[T int | int32 | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

var (
	// ErrClosed is Fetch's error once the Client is closed.
	ErrClosed = errors.New("quorumnet: client closed")
	// ErrUnreachable wraps Fetch's error when the peer's connection is
	// down or breaks before the answer arrives.
	ErrUnreachable = errors.New("quorumnet: peer unreachable")
	// ErrUnknownPeer is Fetch's error for an id that is not in Peers.
	ErrUnknownPeer = errors.New("quorumnet: unknown peer")
)

// Client carries one node's quorum traffic to the other voters over their
// CONTROLLER listeners. It implements voter.Transport and
// metarepl.Transport, and is safe for concurrent use.
//
// Each peer gets two connections, one per channel, each kept open by its
// own goroutine that redials with capped exponential backoff. They are
// separate because a receiver handles a connection's requests one at a
// time, in order, and a fetch may be held for its long poll: an envelope
// behind it would wait that long. Each connection pipelines its requests
// and matches answers by correlation id.
type Client struct {
	cfg Config
	// mu guards peers, which AddPeer grows while the client runs (a
	// voter added by a membership change).
	mu     sync.RWMutex
	peers  map[int32]*peer
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	stats  struct{ sent, dropped, refused atomic.Uint64 }
}

type peer struct {
	env, fetch *link
}

var (
	_ voter.Transport    = (*Client)(nil)
	_ metarepl.Transport = (*Client)(nil)
)

// New starts connecting to every peer and returns at once.
func New(cfg Config) (*Client, error) {
	cfg.setDefaults()
	if cfg.NodeID < 0 {
		return nil, fmt.Errorf("quorumnet: bad node id %d", cfg.NodeID)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{cfg: cfg, peers: map[int32]*peer{}, ctx: ctx, cancel: cancel}
	ids := make([]int32, 0, len(cfg.Peers))
	for id, addr := range cfg.Peers {
		if id == cfg.NodeID {
			continue
		}
		if id < 0 || addr == "" {
			cancel()
			return nil, fmt.Errorf("quorumnet: bad peer %d@%q", id, addr)
		}
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		c.startPeer(id, cfg.Peers[id])
	}
	return c, nil
}

// startPeer adds peer id at addr and starts its links. Under mu, or
// before the client is shared.
func (c *Client) startPeer(id int32, addr string) {
	p := &peer{
		env:   newLink(c, id, addr, ChannelEnvelope, c.cfg.QueueSize),
		fetch: newLink(c, id, addr, ChannelFetch, 64),
	}
	c.peers[id] = p
	for _, l := range []*link{p.env, p.fetch} {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			l.run()
		}()
	}
}

// ErrPeerMoved is AddPeer's error for a peer known at another address.
var ErrPeerMoved = errors.New("quorumnet: peer known at another address")

// AddPeer starts connecting to voter id at addr (host:port of its
// CONTROLLER listener), for a voter that a membership change adds: Send
// and Fetch reach it from now on. A peer already known at addr, or this
// node itself, is a no-op; one known at another address is ErrPeerMoved
// (a voter's address does not change while the client runs).
func (c *Client) AddPeer(id int32, addr string) error {
	if id < 0 || addr == "" {
		return fmt.Errorf("quorumnet: bad peer %d@%q", id, addr)
	}
	if id == c.cfg.NodeID {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx.Err() != nil {
		return ErrClosed
	}
	if p := c.peers[id]; p != nil {
		if p.env.addr != addr {
			return fmt.Errorf("%w: node %d at %s, not %s", ErrPeerMoved, id, p.env.addr, addr)
		}
		return nil
	}
	c.startPeer(id, addr)
	c.cfg.Logger.Info("quorum peer added", "peer", id, "addr", addr)
	return nil
}

// Reachable reports whether voter id has a connection up now (on the
// envelope channel): what a membership change that adds it waits for.
func (c *Client) Reachable(id int32) bool {
	p := c.peer(id)
	if p == nil {
		return false
	}
	p.env.mu.Lock()
	defer p.env.mu.Unlock()
	return p.env.up
}

func (c *Client) peer(id int32) *peer {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.peers[id]
}

// Send queues payload (a voter envelope) for voter to and returns at
// once. The message is dropped when to is unknown or not connected, or
// its queue is full: the protocol resends what matters. Send copies
// payload.
func (c *Client) Send(to int32, payload []byte) {
	p := c.peer(to)
	if p == nil || c.ctx.Err() != nil {
		c.stats.dropped.Add(1)
		return
	}
	if p.env.enqueue(&call{frame: c.frame(ChannelEnvelope, payload)}, false) != nil {
		c.stats.dropped.Add(1)
	}
}

// Fetch sends req to voter to and waits for the answer until ctx ends. It
// fails at once, wrapping ErrUnreachable, while the peer's connection is
// down after a failure (the fetcher backs off and retries), and waits
// while it is first being set up. A fetch whose ctx ends after it was
// written closes its connection: the receiver would otherwise hold it
// for its long poll, and every later fetch on that connection behind it.
func (c *Client) Fetch(ctx context.Context, to int32, req metarepl.FetchRequest) (metarepl.FetchResponse, error) {
	p := c.peer(to)
	if p == nil {
		return metarepl.FetchResponse{}, fmt.Errorf("%w %d", ErrUnknownPeer, to)
	}
	raw, err := req.MarshalBinary()
	if err != nil {
		return metarepl.FetchResponse{}, fmt.Errorf("quorumnet: encoding a fetch for node %d: %w", to, err)
	}
	cl := &call{frame: c.frame(ChannelFetch, raw), done: make(chan result, 1)}
	if c.ctx.Err() != nil {
		return metarepl.FetchResponse{}, ErrClosed
	}
	if err := p.fetch.enqueue(cl, true); err != nil {
		return metarepl.FetchResponse{}, err
	}
	select {
	case res := <-cl.done:
		if res.err != nil {
			return metarepl.FetchResponse{}, res.err
		}
		var resp metarepl.FetchResponse
		if err := resp.UnmarshalBinary(res.payload); err != nil {
			return metarepl.FetchResponse{}, fmt.Errorf("quorumnet: answer of node %d: %w", to, err)
		}
		return resp, nil
	case <-ctx.Done():
		p.fetch.abandon(cl)
		return metarepl.FetchResponse{}, fmt.Errorf("quorumnet: fetch from node %d: %w", to, ctx.Err())
	case <-c.ctx.Done():
		return metarepl.FetchResponse{}, ErrClosed
	}
}

// Stats counts envelopes: Sent were written to a connection, Dropped never
// were (peer unknown or down, queue full, connection lost first), Refused
// were answered with an error code (the receiver runs no voter, or its
// inbox was full).
type Stats struct {
	Sent, Dropped, Refused uint64
}

// Stats returns the counts so far.
func (c *Client) Stats() Stats {
	return Stats{Sent: c.stats.sent.Load(), Dropped: c.stats.dropped.Load(), Refused: c.stats.refused.Load()}
}

// Close closes every connection and waits for the client's goroutines.
// Fetches in flight fail with ErrClosed; later Sends are dropped.
func (c *Client) Close() error {
	c.mu.Lock() // no AddPeer adds to wg after this
	c.cancel()
	c.mu.Unlock()
	c.wg.Wait()
	return nil
}

// frame builds a whole request frame (size, header v1, body); the
// writer stamps the correlation id at corrOffset.
func (c *Client) frame(ch Channel, payload []byte) []byte {
	b := make([]byte, 4, 4+10+len(c.cfg.ClientID)+9+len(payload))
	b = netio.AppendRequestHeader(b, APIKey, APIVersion, 0, &c.cfg.ClientID)
	b = Request{From: c.cfg.NodeID, Channel: ch, Payload: payload}.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// corrOffset is where a frame's correlation id is: after the size, the
// key and the version.
const corrOffset = 8
