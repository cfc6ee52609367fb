package metalog

import (
	"fmt"
	"slices"

	"github.com/sluice-io/sluice/caspaxos"
	"github.com/sluice-io/sluice/isr"
)

// rec is one record of the simulated metadata log: the epoch that wrote it
// and a value unique in the run, so a changed record is visible.
type rec struct {
	epoch int32
	val   uint64
}

// cacheEntry is a line of the leader-epoch cache. A takeover entry is
// written and fsynced at takeover, before any append; the others follow
// their first record's durability.
type cacheEntry struct {
	isr.EpochEntry
	takeover bool
}

// memLog is a node's log in memory: records, how many are fsynced, and the
// epoch cache. A crash keeps exactly the fsynced prefix.
type memLog struct {
	recs    []rec
	durable int
	cache   []cacheEntry
}

func (m *memLog) durableEnd() int64 { return int64(m.durable) }

// entries is the durable epoch cache.
func (m *memLog) entries() []isr.EpochEntry {
	var out []isr.EpochEntry
	for _, e := range m.cache {
		if e.takeover || e.StartOffset < int64(m.durable) {
			out = append(out, e.EpochEntry)
		}
	}
	return out
}

// local is the durable log as the Follower sees it.
func (m *memLog) local(hw int64) isr.LocalLog {
	l := isr.LocalLog{LogEndOffset: m.durableEnd(), HighWatermark: hw, LatestEpoch: isr.UndefinedEpoch}
	if es := m.entries(); len(es) > 0 {
		l.LatestEpoch = es[len(es)-1].Epoch
	}
	return l
}

// lookup is the leader's EndOffsetFor over its durable log.
func (m *memLog) lookup() isr.EpochLookup {
	es, end := m.entries(), m.durableEnd()
	return func(e int32) (int32, int64) {
		r := isr.EndOffsetFor(es, e, end)
		return r.Epoch, r.EndOffset
	}
}

func (m *memLog) latestEpoch() int32 {
	if len(m.cache) == 0 {
		return isr.UndefinedEpoch
	}
	return m.cache[len(m.cache)-1].Epoch
}

// append writes rs at offset (unsynced), extending the epoch cache.
func (m *memLog) append(offset int64, rs []rec) error {
	if offset != int64(len(m.recs)) {
		return fmt.Errorf("append at %d to a log ending at %d", offset, len(m.recs))
	}
	for _, r := range rs {
		switch last := m.latestEpoch(); {
		case r.epoch < last:
			return fmt.Errorf("append of epoch %d after epoch %d at %d", r.epoch, last, len(m.recs))
		case r.epoch > last:
			m.cache = append(m.cache, cacheEntry{EpochEntry: isr.EpochEntry{Epoch: r.epoch, StartOffset: int64(len(m.recs))}})
		}
		m.recs = append(m.recs, r)
	}
	return nil
}

func (m *memLog) fsync() { m.durable = len(m.recs) }

// truncate cuts the log at off, durably, and the epoch cache with it
// (Kafka's truncateFromEnd: entries starting at or after off go).
func (m *memLog) truncate(off int64) {
	m.recs = m.recs[:off]
	m.durable = min(m.durable, int(off))
	m.cache = slices.DeleteFunc(m.cache, func(e cacheEntry) bool { return e.StartOffset >= off })
}

// crash loses what was not fsynced.
func (m *memLog) crash() {
	m.recs = m.recs[:m.durable]
	m.cache = slices.DeleteFunc(m.cache, func(e cacheEntry) bool {
		return !e.takeover && e.StartOffset >= int64(m.durable)
	})
}

// takeover fsyncs the log and caches (epoch, log end) before any append.
func (m *memLog) takeover(epoch int32) error {
	m.fsync()
	if last := m.latestEpoch(); epoch <= last {
		return fmt.Errorf("takeover in epoch %d after epoch %d", epoch, last)
	}
	m.cache = append(m.cache, cacheEntry{EpochEntry: isr.EpochEntry{Epoch: epoch, StartOffset: int64(len(m.recs))}, takeover: true})
	return nil
}

// cell is the stand-in for the CASPaxos register: a linearizable
// in-memory value changed by the real caspaxos changes (Takeover,
// ShrinkISR, ExpandISR, SetVoters), so the checks are the register's own.
// c is its decoded value.
type cell struct {
	val []byte
	c   Config
	// anyTakeover replaces Takeover by one without the ISR check (a
	// planted bug).
	anyTakeover bool
}

func newCell(voters []Voter, minISR int) (*cell, error) {
	members := make([]caspaxos.Member, len(voters))
	for i, v := range voters {
		members[i] = caspaxos.Member{Voter: v}
	}
	r, err := caspaxos.BootstrapValue("sim", members, int32(minISR))
	if err != nil {
		return nil, err
	}
	c := &cell{}
	if c.val, err = r.MarshalBinary(); err != nil {
		return nil, err
	}
	c.c = ConfigOf(r)
	return c, nil
}

// apply runs ch atomically and returns the value after it.
func (c *cell) apply(ch caspaxos.Change) (Config, error) {
	next, err := ch(c.val)
	if err == nil {
		var r caspaxos.Register
		if derr := r.UnmarshalBinary(next); derr != nil {
			return Config{}, derr
		}
		c.val, c.c = next, ConfigOf(r)
	}
	return cloneConfig(c.c), err
}

func cloneConfig(c Config) Config {
	c.Voters, c.ISR = slices.Clone(c.Voters), slices.Clone(c.ISR)
	return c
}

// cas runs an ISRChange as the caller would: ExpandISR or ShrinkISR, its
// error sorted by RegisterError.
func (c *cell) cas(ch ISRChange) (Config, error) {
	change := caspaxos.ShrinkISR(ch.Epoch, ch.Version, ch.ISR)
	if ch.Expand {
		change = caspaxos.ExpandISR(ch.Epoch, ch.Version, ch.ISR)
	}
	cfg, err := c.apply(change)
	return cfg, RegisterError(err)
}

// takeover makes me active in epoch seen+1 if the register is still at
// seen and me is in the ISR. The simulation renews no lease, so the lease
// the caller saw stall is always 0.
func (c *cell) takeover(seen int32, me Voter) (Config, error) {
	if !c.anyTakeover {
		return c.apply(caspaxos.Takeover(seen, 0, me))
	}
	return c.apply(caspaxos.RegisterChange(func(r *caspaxos.Register) error {
		if r.Epoch != seen {
			return &caspaxos.EpochError{Expected: seen, Current: *r}
		}
		r.Epoch++
		r.Active, r.Lease = me, 0
		if !r.InISR(me) {
			r.ISR = append(r.ISR, me)
			r.ConfigVersion++
		}
		return nil
	}))
}

// bump is a voter-set change elsewhere: the same voters, a new version.
func (c *cell) bump() error {
	members := make([]caspaxos.Member, len(c.c.Voters))
	for i, v := range c.c.Voters {
		members[i] = caspaxos.Member{Voter: v}
	}
	_, err := c.apply(caspaxos.SetVoters(c.c.Epoch, c.c.Version, members))
	return err
}
