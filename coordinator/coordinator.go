// Package coordinator is Sluice's group coordinator: it answers the consumer
// group APIs (one file per API, named after it), keeps every group's
// committed offsets, and makes both durable in the internal topic
// __consumer_offsets.
//
// The membership protocols themselves are the I/O-free state machines of
// package group: group.Group for the classic protocol (JoinGroup, SyncGroup,
// Heartbeat, LeaveGroup) and group.ConsumerGroup for KIP-848
// (ConsumerGroupHeartbeat). This package gives them time (one timer per
// group), parks the requests they park, persists what they say changed, and
// owns the offsets.
//
// # Durability
//
// Every change is written to the group's partition of __consumer_offsets
// (partition = Java hashCode of the group id mod the partition count, as in
// Kafka) through Log.Append, which is the broker's produce path; a commit is
// answered only after its append returns, and offsets in memory change only
// after the append succeeded. At start the broker calls Load, which replays every
// partition in order: the last record for a key wins and a record with a null
// value (a tombstone) deletes the key. Records use Kafka's formats
// (OffsetCommitKey/Value, GroupMetadataKey/Value) except KIP-848 group state,
// which is one JSON snapshot per group under a key version of Sluice's own
// (see records.go).
//
// # Locking
//
// The registry lock (Coordinator.mu) guards the group map; each group has its
// own lock, held while an operation decides what to write, but not across the
// append: the records go into the group's write queue (writes.go), appended
// in order outside the lock and applied under it afterwards, so the log
// order of a group's records is the order its operations were decided while
// a slow append (an fsync) does not stall the group's heartbeats and reads.
// The registry lock is never taken while a group lock is held.
package coordinator

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/group"
	"github.com/sluice-io/sluice/internal/clock"
)

// OffsetsTopic is the internal topic that holds committed offsets and group
// metadata.
const OffsetsTopic = "__consumer_offsets"

// Log is the coordinator's access to __consumer_offsets.
type Log interface {
	// Open returns the partition count of the offsets topic. With create
	// set it creates the topic (with partitions partitions) when it does
	// not exist; without, it returns 0 for a missing topic.
	Open(create bool, partitions int32) (int32, error)
	// Append writes records to one partition and returns once they are
	// acknowledged as a producer with acks=all would be.
	Append(partition int32, records []Record) error
	// Replay calls fn for every record of a partition, from the log start,
	// in offset order.
	Replay(partition int32, fn func(Record) error) error
	// Leads reports whether this node leads a partition of the offsets
	// topic: the coordinator serves exactly the groups of those.
	Leads(partition int32) bool
}

// Record is one record of __consumer_offsets. A nil Value is a tombstone.
type Record struct {
	Key, Value []byte
}

// Config is the coordinator's configuration.
type Config struct {
	Classic  group.Config
	Consumer group.ConsumerConfig
	// Partitions is offsets.topic.num.partitions, used when the coordinator
	// creates the offsets topic.
	Partitions int32
	// Retention is offsets.retention.minutes.
	Retention time.Duration
	// MaxMetadataBytes is offset.metadata.max.bytes.
	MaxMetadataBytes int
}

// Client identifies who sent a request, for DescribeGroups.
type Client struct {
	ID   string // the request header's client id
	Host string // the peer address, as Kafka prints it ("/127.0.0.1")
}

// Coordinator is the group coordinator of one broker.
type Coordinator struct {
	cfg    Config
	log    Log
	topics func() *group.TopicImage
	clock  clock.Clock
	now    func() time.Time // clock.Now
	logger *slog.Logger

	mu     sync.Mutex
	groups map[string]*entry
	parts  int32 // partitions of the offsets topic; 0 until it exists
	// owned is the state of each offsets partition whose groups this
	// node serves (ownership.go); absent means another node's.
	owned map[int32]ownState
	// syncMu serializes loading and unloading partitions (Sync).
	syncMu sync.Mutex
	closed bool
	done   chan struct{} // closed by Close: parked requests give up
}

// New returns a coordinator over log. topics gives the current topic image
// (used to validate commits and to resolve KIP-848 subscriptions); clk is
// the time groups live by, their session and rebalance timers included
// (nil: the wall clock).
func New(cfg Config, log Log, topics func() *group.TopicImage, clk clock.Clock, logger *slog.Logger) *Coordinator {
	if clk == nil {
		clk = clock.Real()
	}
	return &Coordinator{
		cfg:    cfg,
		log:    log,
		topics: topics,
		clock:  clk,
		now:    clk.Now,
		logger: logger,
		groups: map[string]*entry{},
		owned:  map[int32]ownState{},
		done:   make(chan struct{}),
	}
}

// errNotAvailable answers requests while the offsets topic cannot be opened
// or after Close.
var errNotAvailable = kerr.CoordinatorNotAvailable

// ready makes sure the offsets topic exists (creating it on first use, as
// Kafka does) and returns its partition count.
func (c *Coordinator) ready() (int32, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return 0, errNotAvailable
	}
	if c.parts > 0 {
		defer c.mu.Unlock()
		return c.parts, nil
	}
	n, err := c.log.Open(true, c.cfg.Partitions)
	if err != nil {
		c.mu.Unlock()
		c.logger.Error("cannot create the offsets topic", "topic", OffsetsTopic, "err", err)
		return 0, fmt.Errorf("%w: %s: %v", errNotAvailable, OffsetsTopic, err)
	}
	c.parts = n
	c.mu.Unlock()
	// The new topic's partitions led here are served from now on (empty:
	// nothing to load).
	for p := range n {
		c.Sync(p)
	}
	return n, nil
}

// Ready creates the offsets topic if it does not exist yet; FindCoordinator
// calls it so a client is pointed at a coordinator that can write.
func (c *Coordinator) Ready() error {
	_, err := c.ready()
	return err
}

// PartitionFor maps a group to its partition of the offsets topic the way
// Kafka does (non-negative Java String.hashCode mod the partition count), so
// tools that look for a group's records find them where Kafka would put them.
func PartitionFor(groupID string, partitions int32) int32 {
	var h int32
	for _, r := range utf16Units(groupID) {
		h = 31*h + int32(r)
	}
	return (h & 0x7fffffff) % partitions
}

// utf16Units returns s as Java sees a String: UTF-16 code units.
func utf16Units(s string) []uint16 {
	out := make([]uint16, 0, len(s))
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			out = append(out, uint16(0xd800+(r>>10)), uint16(0xdc00+(r&0x3ff)))
			continue
		}
		out = append(out, uint16(r))
	}
	return out
}

// Close answers every parked request with COORDINATOR_NOT_AVAILABLE (the
// client looks for the coordinator again) and stops every timer.
func (c *Coordinator) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	close(c.done)
	entries := make([]*entry, 0, len(c.groups))
	for _, e := range c.groups {
		entries = append(entries, e)
	}
	c.mu.Unlock()
	for _, e := range entries {
		e.mu.Lock()
		if e.stopTimer != nil {
			e.stopTimer()
		}
		e.mu.Unlock()
	}
}

// lookup returns the locked entry of a group, creating an empty one when
// create is set; nil (and nothing locked) when it does not exist. An entry
// removed between the map lookup and the lock is looked up again.
func (c *Coordinator) lookup(id string, create bool) (*entry, error) {
	var parts int32
	if create {
		var err error
		if parts, err = c.ready(); err != nil {
			return nil, err
		}
	} else {
		// Reading never creates the offsets topic: without it there
		// is no group to find.
		c.mu.Lock()
		closed := c.closed
		c.mu.Unlock()
		if closed {
			return nil, errNotAvailable
		}
	}
	for {
		c.mu.Lock()
		if c.parts > 0 {
			if err := c.ownsLocked(PartitionFor(id, c.parts)); err != nil {
				c.mu.Unlock()
				return nil, err
			}
		}
		e := c.groups[id]
		if e == nil {
			if !create {
				c.mu.Unlock()
				return nil, nil
			}
			e = c.newEntry(id, PartitionFor(id, parts))
			c.groups[id] = e
		}
		c.mu.Unlock()
		e.mu.Lock()
		if w := e.deleting; w != nil {
			// Being deleted: once that write is applied the group is
			// gone (or, the append failed, still here); look again.
			e.mu.Unlock()
			<-w.done
			continue
		}
		if !e.removed {
			return e, nil
		}
		e.mu.Unlock()
	}
}

// forget drops an entry that has become empty (deleted, or expired by
// retention). The caller holds e.mu.
func (c *Coordinator) forget(e *entry) {
	e.removed = true
	if e.stopTimer != nil {
		e.stopTimer()
	}
	c.mu.Lock()
	if c.groups[e.id] == e {
		delete(c.groups, e.id)
	}
	c.mu.Unlock()
}

// entries returns every group, for ListGroups and retention.
func (c *Coordinator) entries() []*entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*entry, 0, len(c.groups))
	for _, e := range c.groups {
		out = append(out, e)
	}
	return out
}

// settle runs after every operation on a group, with e.mu held: it queues
// the group's state if the operation changed it, and re-arms the group's
// timer. It returns the write the operation's answer must wait for (nil:
// none) and the caller passes it to release. Parked answers are handed to
// their waiters when that write is applied, so an answer never gets ahead of
// the log; with no state write queued they go at once.
func (c *Coordinator) settle(e *entry) *write {
	rec, v, changed, err := c.groupRecord(e)
	if err != nil {
		c.logger.Error("persisting group state", "group", e.id, "err", err)
	}
	if st, gen := e.state(), e.generation(); st != e.logged.state || gen != e.logged.gen {
		// One line per transition: operators follow rebalances here.
		e.logged.state, e.logged.gen = st, gen
		c.logger.Info("group state", "group", e.id, "type", e.groupType(), "state", st, "generation", gen, "members", e.members())
	}
	var ds []group.Delivery
	if e.classic != nil {
		ds = e.classic.Drain()
	}
	c.arm(e)
	if !changed && e.stateWrite == nil {
		c.deliver(e, ds)
		return nil
	}
	var recs []Record
	if changed {
		recs, e.persisted = []Record{rec}, v
	}
	w := c.enqueue(e, recs, func(err error) {
		if err != nil {
			c.logger.Error("persisting group state", "group", e.id, "err", err)
			if e.persisted == v {
				e.persisted = unpersisted // write it again next time
			}
		}
		c.deliver(e, ds)
	})
	e.stateWrite = w
	return w
}

// deliver hands parked answers to their waiters. The caller holds e.mu.
func (c *Coordinator) deliver(e *entry, ds []group.Delivery) {
	for _, d := range ds {
		if ch, ok := e.waiters[d.Ticket]; ok {
			ch <- d
			delete(e.waiters, d.Ticket)
		}
	}
}

// arm sets the group's one timer to its state machine's next deadline.
func (c *Coordinator) arm(e *entry) {
	var next time.Time
	switch {
	case e.classic != nil:
		next = e.classic.NextDeadline()
	case e.consumer != nil:
		next = e.consumer.NextDeadline()
	}
	if e.stopTimer != nil {
		e.stopTimer()
	}
	if next.IsZero() || e.removed {
		return
	}
	d := max(next.Sub(c.now()), 0)
	e.stopTimer = c.clock.AfterFunc(d, func() { c.tick(e) })
}

func (c *Coordinator) tick(e *entry) {
	e.mu.Lock()
	if e.removed {
		e.mu.Unlock()
		return
	}
	select {
	case <-c.done:
		e.mu.Unlock()
		return
	default:
	}
	now := c.now()
	switch {
	case e.classic != nil:
		e.classic.Tick(now)
	case e.consumer != nil:
		e.consumer.Tick(now, c.topics())
	}
	_ = c.release(e, c.settle(e))
}

// finish ends a classic JoinGroup or SyncGroup: it settles the group and
// releases e.mu, then, when the state machine parked the request (tk != 0),
// waits for its answer. parked reports whether d holds that answer.
func (c *Coordinator) finish(e *entry, tk group.Ticket) (d group.Delivery, parked bool, err error) {
	var ch chan group.Delivery
	if tk != 0 {
		ch = make(chan group.Delivery, 1)
		e.waiters[tk] = ch
	}
	_ = c.release(e, c.settle(e))
	if tk == 0 {
		return d, false, nil
	}
	select {
	case d = <-ch:
		return d, true, nil
	case <-c.done:
		return d, false, errNotAvailable
	case <-e.gone:
		// The partition's leadership left this node while the request
		// waited: the client looks for the new coordinator.
		return d, false, kerr.NotCoordinator
	}
}

// classicGroup returns the locked entry of a classic group for a request
// from one of its members. A group that does not exist, or is a KIP-848
// group, has no such member: UNKNOWN_MEMBER_ID, which sends the client back
// to JoinGroup.
func (c *Coordinator) classicGroup(id string) (*entry, error) {
	if id == "" {
		return nil, kerr.InvalidGroupID
	}
	e, err := c.lookup(id, false)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, kerr.UnknownMemberID
	}
	if e.classic == nil {
		e.mu.Unlock()
		return nil, kerr.UnknownMemberID
	}
	return e, nil
}

// errorCode turns an error from this package, the group state machines or
// the log into a Kafka error code; this is the coordinator's edge.
func errorCode(err error) int16 {
	if err == nil {
		return 0
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	return kerr.UnknownServerError.Code
}

// appendErrorCode maps a failed append of commits to what Kafka answers
// OffsetCommit with: the coordinator could not write, so the client retries
// (or, for a batch over the size limit, gives up).
func appendErrorCode(err error) int16 {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		switch ke {
		case kerr.MessageTooLarge, kerr.RecordListTooLarge:
			return kerr.InvalidCommitOffsetSize.Code
		case kerr.NotLeaderForPartition:
			return kerr.NotCoordinator.Code
		}
	}
	return kerr.CoordinatorNotAvailable.Code
}

var errGroupIDNotFound = kerr.GroupIDNotFound
