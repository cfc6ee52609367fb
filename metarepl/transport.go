package metarepl

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/sluice-io/sluice/metalog"
)

// Transport carries a fetch to the node with the given voter id and brings
// back its answer. It may fail or time out (ctx); the fetcher retries. The
// broker's implementation will carry the encoded messages inside a
// Kafka-framed request on the CONTROLLER listener.
type Transport interface {
	Fetch(ctx context.Context, to int32, req FetchRequest) (FetchResponse, error)
}

// Handler serves a fetch: Replica.HandleFetch.
type Handler func(ctx context.Context, req FetchRequest) FetchResponse

// ErrUnreachable is MemNetwork's failure for a cut link or a node that is
// not listening.
var ErrUnreachable = errors.New("metarepl: node unreachable")

// MemNetwork is an in-process network for tests: nodes Listen by id, and
// each fetch is encoded to bytes and decoded on both legs (so the codec is
// exercised), through links that can be cut one way or both and that may
// lose a share of the messages.
type MemNetwork struct {
	mu       sync.Mutex
	handlers map[int32]Handler
	cut      map[[2]int32]bool // from → to is down
	loss     float64           // probability that a leg is lost
	rng      *rand.Rand
}

// NewMemNetwork returns a network with every link up.
func NewMemNetwork() *MemNetwork {
	return &MemNetwork{handlers: map[int32]Handler{}, cut: map[[2]int32]bool{}}
}

// Listen makes id's fetches go to h (nil stops listening).
func (n *MemNetwork) Listen(id int32, h Handler) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if h == nil {
		delete(n.handlers, id)
		return
	}
	n.handlers[id] = h
}

// Cut takes the link from → to down (requests from from and answers to
// it); Isolate cuts every link of id both ways; HealAll brings all up.
func (n *MemNetwork) Cut(from, to int32) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut[[2]int32{from, to}] = true
}

// Isolate cuts id off from every other node, both ways.
func (n *MemNetwork) Isolate(id int32) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for other := range n.handlers {
		n.cut[[2]int32{id, other}] = true
		n.cut[[2]int32{other, id}] = true
	}
	n.cut[[2]int32{id, -1}] = true // isolated: also from nodes not yet listening
}

// SetLoss makes each leg of each fetch (the request, or the answer after
// the leader handled it) fail with probability p, drawn from seed.
func (n *MemNetwork) SetLoss(p float64, seed uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.loss, n.rng = p, rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

func (n *MemNetwork) lost() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.loss > 0 && n.rng.Float64() < n.loss
}

// HealAll brings every link up.
func (n *MemNetwork) HealAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut = map[[2]int32]bool{}
}

func (n *MemNetwork) down(from, to int32) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cut[[2]int32{from, to}] || n.cut[[2]int32{from, -1}] || n.cut[[2]int32{to, -1}]
}

// Transport is from's end of the network.
func (n *MemNetwork) Transport(from int32) Transport { return memTransport{n: n, from: from} }

type memTransport struct {
	n    *MemNetwork
	from int32
}

// Fetch delivers req to node to unless the link is down or the request
// lost, and the answer back unless a link went down meanwhile or the
// answer is lost. A down link or a loss fails at once.
func (t memTransport) Fetch(ctx context.Context, to int32, req FetchRequest) (FetchResponse, error) {
	if t.n.down(t.from, to) || t.n.lost() {
		return FetchResponse{}, fmt.Errorf("fetch %d → %d: %w", t.from, to, ErrUnreachable)
	}
	t.n.mu.Lock()
	h := t.n.handlers[to]
	t.n.mu.Unlock()
	if h == nil {
		return FetchResponse{}, fmt.Errorf("fetch %d → %d: not listening: %w", t.from, to, ErrUnreachable)
	}
	raw, err := req.MarshalBinary()
	if err != nil {
		return FetchResponse{}, err
	}
	var in FetchRequest
	if err := in.UnmarshalBinary(raw); err != nil {
		return FetchResponse{}, err
	}
	resp := h(ctx, in)
	if err := ctx.Err(); err != nil {
		return FetchResponse{}, err
	}
	if t.n.down(to, t.from) || t.n.down(t.from, to) || t.n.lost() {
		return FetchResponse{}, fmt.Errorf("answer %d → %d: %w", to, t.from, ErrUnreachable)
	}
	if raw, err = resp.MarshalBinary(); err != nil {
		return FetchResponse{}, err
	}
	var out FetchResponse
	if err := out.UnmarshalBinary(raw); err != nil {
		return FetchResponse{}, err
	}
	return out, nil
}

// Register is the controller quorum's register as the metadata log uses
// it (package voter's, later): ChangeISR runs an ISR compare-and-set
// (caspaxos.ExpandISR when change.Expand, else caspaxos.ShrinkISR) and
// returns the register after it; Read is a full read round. Errors may be
// the caspaxos ones as they are: the Replica sorts them with
// metalog.RegisterError. Both may block; ctx bounds them.
type Register interface {
	ChangeISR(ctx context.Context, change metalog.ISRChange) (metalog.Config, error)
	Read(ctx context.Context) (metalog.Config, error)
}
