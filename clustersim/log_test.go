package clustersim

import (
	"fmt"
	"slices"

	"github.com/sluice-io/sluice/isr"
)

// rec is one record of the simulated metadata log: the controller epoch
// that appended it and a value unique in the run, so a changed or moved
// record is visible.
type rec struct {
	epoch int32
	val   uint64
}

// cacheEntry is a line of the leader-epoch cache. A takeover entry is
// written and fsynced at takeover, before any append (metarepl's
// CacheEpoch); the others follow their first record's durability.
type cacheEntry struct {
	isr.EpochEntry
	takeover bool
}

// memLog is a node's metadata log on a simulated disk: records, how many
// are fsynced, and the epoch cache. A crash keeps exactly the fsynced
// prefix (MemFS-style: unsynced writes are lost).
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

// local is the durable log as a metalog.Follower is told about it.
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

// append writes rs at offset, unsynced, extending the epoch cache.
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
// (entries starting at or after off go, as Kafka's truncateFromEnd).
func (m *memLog) truncate(off int64) {
	m.recs = m.recs[:off]
	m.durable = min(m.durable, int(off))
	m.cache = slices.DeleteFunc(m.cache, func(e cacheEntry) bool { return e.StartOffset >= off })
}

// dropUnsynced loses what was not fsynced: a crash, or a role change that
// abandons records never served nor counted.
func (m *memLog) dropUnsynced() {
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
