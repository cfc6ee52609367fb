package voter

import (
	"bytes"
	"math/rand/v2"
	"sync"
)

// Transport carries envelopes between voters. Send is fire-and-forget: it
// must not block for long (it runs on the voter's event loop), it may drop
// the message, and it reports nothing; the protocol retries. The receiving
// side hands what arrives to that voter's Voter.Deliver with the sender's
// node id. Send must not keep payload after it returns unless it copies it.
type Transport interface {
	Send(to int32, payload []byte)
}

// MemNetwork is an in-memory network of voters for tests: Send delivers
// synchronously into the addressee's Deliver (which only queues), unless
// the link is cut, a node is isolated or detached, or a random drop hits.
// It is safe for concurrent use.
type MemNetwork struct {
	mu       sync.Mutex
	nodes    map[int32]func(from int32, payload []byte) error
	cut      map[[2]int32]bool
	isolated map[int32]bool
	drop     float64
	rng      *rand.Rand
	sent     int
	dropped  int
}

// NewMemNetwork returns a network with no nodes attached; seed drives its
// random drops.
func NewMemNetwork(seed uint64) *MemNetwork {
	return &MemNetwork{nodes: map[int32]func(int32, []byte) error{}, cut: map[[2]int32]bool{},
		isolated: map[int32]bool{}, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Transport returns the endpoint node id sends through.
func (n *MemNetwork) Transport(id int32) Transport { return memEndpoint{n: n, from: id} }

// Attach routes messages for id to deliver (a Voter's Deliver), replacing
// whatever was attached before (a restarted voter).
func (n *MemNetwork) Attach(id int32, deliver func(from int32, payload []byte) error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.nodes[id] = deliver
}

// Detach drops every message for id from now on, as for a dead process.
func (n *MemNetwork) Detach(id int32) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.nodes, id)
}

// Isolate cuts (on) or heals every link of id.
func (n *MemNetwork) Isolate(id int32, on bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.isolated[id] = on
}

// Cut cuts (on) or heals the link between a and b, both ways.
func (n *MemNetwork) Cut(a, b int32, on bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut[[2]int32{min(a, b), max(a, b)}] = on
}

// SetDrop makes every message lost with probability p.
func (n *MemNetwork) SetDrop(p float64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.drop = p
}

// Stats returns how many messages were sent and how many of them the
// network dropped.
func (n *MemNetwork) Stats() (sent, dropped int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.sent, n.dropped
}

func (n *MemNetwork) send(from, to int32, payload []byte) {
	n.mu.Lock()
	n.sent++
	deliver := n.nodes[to]
	if deliver == nil || n.isolated[from] || n.isolated[to] || n.cut[[2]int32{min(from, to), max(from, to)}] ||
		(n.drop > 0 && n.rng.Float64() < n.drop) {
		n.dropped++
		n.mu.Unlock()
		return
	}
	n.mu.Unlock()
	// Outside the lock: the addressee's Deliver only queues, but a test's
	// hook may call back into the network.
	_ = deliver(from, bytes.Clone(payload))
}

type memEndpoint struct {
	n    *MemNetwork
	from int32
}

func (e memEndpoint) Send(to int32, payload []byte) { e.n.send(e.from, to, payload) }
