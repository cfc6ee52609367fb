package coordinator

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/sluice-io/sluice/group"
)

// entry is one group: its membership state machine (classic, or KIP-848
// consumer), its committed offsets, and the plumbing around them. A group
// that only ever had offsets committed (an admin tool, or consumers that
// assign partitions themselves) is a classic group with no members, as in
// Kafka.
type entry struct {
	mu        sync.Mutex
	id        string
	partition int32 // of the offsets topic

	// Exactly one of classic and consumer is set.
	classic  *group.Group
	consumer *group.ConsumerGroup
	// persisted is the state machine's Version last queued for the log
	// (unpersisted after that write failed).
	persisted uint64

	offsets map[string]map[int32]offset // topic → partition → offset
	// emptySince is when the group was last seen without members: offsets
	// retention counts from then (KIP-211). Zero while it has members.
	emptySince time.Time

	waiters   map[group.Ticket]chan group.Delivery
	stopTimer func() bool // disarms the group's one timer; nil when none
	// gone is closed when the group's partition is unloaded (its
	// leadership left this node): parked requests answer NOT_COORDINATOR.
	gone    chan struct{}
	removed bool // forgotten by the registry; look the group up again

	// The write queue (writes.go): appends decided, in order, not yet
	// applied; writing is set while a goroutine appends them.
	queue   []*write
	writing bool
	// stateWrite is the newest queued write of the group's state: answers
	// that depend on the state wait for it. deleting is a queued deletion
	// of the group: lookups wait for it, then find the group gone (or, if
	// the append failed, still there).
	stateWrite, deleting *write

	// logged is the state and generation (epoch) last logged, so a
	// transition is logged once.
	logged struct {
		state string
		gen   int32
	}
}

// generation is the classic generation or the KIP-848 group epoch.
func (e *entry) generation() int32 {
	if e.consumer != nil {
		return e.consumer.Epoch()
	}
	return e.classic.Generation()
}

func (e *entry) members() int {
	if e.consumer != nil {
		return e.consumer.Len()
	}
	return len(e.classic.Members())
}

// newEntry returns an empty classic group.
func (c *Coordinator) newEntry(id string, partition int32) *entry {
	return &entry{
		id:        id,
		partition: partition,
		classic:   group.New(id, c.cfg.Classic),
		offsets:   map[string]map[int32]offset{},
		waiters:   map[group.Ticket]chan group.Delivery{},
		gone:      make(chan struct{}),
	}
}

// groupType is the group's type as ListGroups v5 reports it.
func (e *entry) groupType() string {
	if e.consumer != nil {
		return "consumer"
	}
	return "classic"
}

func (e *entry) empty() bool {
	if e.consumer != nil {
		return e.consumer.Len() == 0
	}
	return e.classic.IsEmpty()
}

// state is the group state as ListGroups and DescribeGroups report it.
func (e *entry) state() string {
	if e.consumer != nil {
		return e.consumer.State()
	}
	return e.classic.State().String()
}

// protocolType is what ListGroups reports: the classic members' protocol
// type ("" for a group of offsets only), "consumer" for KIP-848 groups.
func (e *entry) protocolType() string {
	if e.consumer != nil {
		return "consumer"
	}
	return e.classic.ProtocolType()
}

// unpersisted is a state version no state machine reaches: the group's
// state must be written at the next settle.
const unpersisted = ^uint64(0)

// groupRecord returns the state machine's record if its state changed
// since the last one queued. The caller holds e.mu.
func (c *Coordinator) groupRecord(e *entry) (rec Record, version uint64, changed bool, err error) {
	now := c.now()
	if e.empty() {
		if e.emptySince.IsZero() {
			e.emptySince = now
		}
	} else {
		e.emptySince = time.Time{}
	}
	switch {
	case e.consumer != nil:
		if version = e.consumer.Version(); version == e.persisted {
			return rec, version, false, nil
		}
		rec, err = consumerRecord(e.consumer)
	default:
		if version = e.classic.Version(); version == e.persisted {
			return rec, version, false, nil
		}
		rec = classicRecord(e.classic, now)
	}
	return rec, version, err == nil, err
}

// useClassic makes the group a classic one, converting an empty KIP-848
// group (its offsets stay). It fails when the group is a KIP-848 group with
// members, as Kafka does without online migration.
func (c *Coordinator) useClassic(e *entry) error {
	if e.consumer == nil {
		return nil
	}
	if e.consumer.Len() > 0 {
		return fmt.Errorf("%w: group %s uses the consumer protocol (KIP-848) and has members", errGroupIDNotFound, e.id)
	}
	e.consumer, e.classic, e.persisted = nil, group.New(e.id, c.cfg.Classic), 0
	return nil
}

// useConsumer makes the group a KIP-848 one, converting an empty classic
// group.
func (c *Coordinator) useConsumer(e *entry) error {
	if e.consumer != nil {
		return nil
	}
	if !e.classic.IsEmpty() || e.classic.State() != group.Empty {
		return fmt.Errorf("%w: group %s is a classic group with members", errGroupIDNotFound, e.id)
	}
	e.classic, e.consumer, e.persisted = nil, group.NewConsumerGroup(e.id, c.cfg.Consumer), 0
	return nil
}

// Load replays the partitions of the offsets topic this node leads, if the
// topic exists, into memory. The broker calls it once at start, before it
// serves requests; later leadership changes come through Sync.
func (c *Coordinator) Load() error {
	n, err := c.log.Open(false, c.cfg.Partitions)
	if err != nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	if n == 0 {
		return nil
	}
	c.mu.Lock()
	c.parts = n
	c.mu.Unlock()
	started := c.now()
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	total := loadStats{}
	for p := range n {
		if !c.log.Leads(p) {
			continue
		}
		st, err := c.loadPartition(p, n)
		if err != nil {
			return err
		}
		total.add(st)
	}
	c.logger.Info("group coordinator loaded", "groups", total.groups, "offsets", total.offsets, "skipped_records", total.skipped,
		"took", c.now().Sub(started).Round(time.Millisecond))
	return nil
}

// loadStats counts what loading found.
type loadStats struct{ groups, offsets, skipped int }

func (s *loadStats) add(o loadStats) {
	s.groups += o.groups
	s.offsets += o.offsets
	s.skipped += o.skipped
}

// loadPartition replays partition p (of n) into memory and serves its
// groups from then on. The caller holds c.syncMu.
func (c *Coordinator) loadPartition(p, n int32) (loadStats, error) {
	var st loadStats
	c.mu.Lock()
	c.owned[p] = loading
	c.mu.Unlock()
	r := &replayer{groups: map[string]*loaded{}}
	err := c.log.Replay(p, func(rec Record) error {
		s, err := r.apply(rec)
		if s {
			st.skipped++
		}
		return err
	})
	if err != nil {
		c.mu.Lock()
		delete(c.owned, p)
		c.mu.Unlock()
		return st, fmt.Errorf("coordinator: replaying %s partition %d: %w", OffsetsTopic, p, err)
	}
	now := c.now()
	c.mu.Lock()
	var toArm []*entry
	for id, l := range r.groups {
		e := c.newEntry(id, PartitionFor(id, n))
		for t, ps := range l.offsets {
			if len(ps) > 0 {
				e.offsets[t] = ps
				st.offsets += len(ps)
			}
		}
		switch {
		case l.consumer != nil:
			e.classic = nil
			e.consumer = group.RestoreConsumerGroup(id, c.cfg.Consumer, *l.consumer, now)
			e.persisted = e.consumer.Version()
		case l.classic != nil:
			e.classic = group.Restore(id, c.cfg.Classic, *l.classic, now)
			e.persisted = e.classic.Version()
		default:
			if len(e.offsets) == 0 {
				continue // deleted
			}
		}
		if e.empty() {
			e.emptySince = now
		}
		c.groups[id] = e
		toArm = append(toArm, e)
		st.groups++
	}
	c.owned[p] = owned
	c.mu.Unlock()
	// Timers are armed once the registry lock is released: the lock order
	// is a group's entry.mu, then the registry's c.mu (forget, which a
	// timer may call), and arming under c.mu would nest them the other way.
	for _, e := range toArm {
		e.mu.Lock()
		c.arm(e)
		e.mu.Unlock()
	}
	return st, nil
}

// ExpireOffsets drops committed offsets past offsets.retention.minutes, as
// Kafka does since KIP-211: a group's offsets expire only once the group has
// been empty for the retention period (counted from the later of the commit
// and the moment it became empty), so an idle but live consumer group keeps
// its position. A group left with neither members nor offsets is deleted.
// The broker calls it every offsets.retention.check.interval.ms.
func (c *Coordinator) ExpireOffsets() {
	if c.cfg.Retention <= 0 {
		return
	}
	for _, e := range c.entries() {
		e.mu.Lock()
		var w *write
		if !e.removed && e.deleting == nil {
			w = c.queueExpiry(e)
		}
		_ = c.release(e, w)
	}
}

// queueExpiry queues tombstones for the group's expired offsets (and the
// group's own when nothing would be left); memory follows once they are in
// the log. The caller holds e.mu.
func (c *Coordinator) queueExpiry(e *entry) *write {
	if !e.empty() {
		return nil
	}
	now := c.now()
	type tp struct {
		topic     string
		partition int32
	}
	var gone []tp
	var recs []Record
	for t, ps := range e.offsets {
		for p, o := range ps {
			base := o.CommitTime
			if e.emptySince.After(base) {
				base = e.emptySince
			}
			if now.Sub(base) >= c.cfg.Retention {
				gone = append(gone, tp{t, p})
				recs = append(recs, offsetRecord(e.id, t, p, nil))
			}
		}
	}
	sort.Slice(recs, func(i, j int) bool { return string(recs[i].Key) < string(recs[j].Key) })
	remaining := 0
	for _, ps := range e.offsets {
		remaining += len(ps)
	}
	remaining -= len(gone)
	deleteGroup := remaining == 0 && (e.consumer == nil || e.consumer.State() == "Empty")
	if deleteGroup {
		recs = append(recs, Record{Key: groupKey(keyGroupMetadata, e.id)}, Record{Key: groupKey(keyConsumerGroupV1, e.id)})
	}
	if len(recs) == 0 {
		return nil
	}
	w := c.enqueue(e, recs, func(err error) {
		if err != nil {
			c.logger.Error("expiring offsets", "group", e.id, "err", err)
			return
		}
		for _, g := range gone {
			delete(e.offsets[g.topic], g.partition)
			if len(e.offsets[g.topic]) == 0 {
				delete(e.offsets, g.topic)
			}
		}
		if len(gone) > 0 {
			c.logger.Info("committed offsets expired", "group", e.id, "partitions", len(gone))
		}
		if deleteGroup {
			if err := c.dropGroup(e); err != nil {
				c.logger.Error("expiring group", "group", e.id, "err", err)
			}
		}
	})
	if deleteGroup {
		e.deleting = w
	}
	return w
}
