package coordinator

import (
	"github.com/twmb/franz-go/pkg/kerr"
)

// The coordinator serves the groups of the __consumer_offsets partitions
// this node leads, as Kafka's GroupCoordinator does with onElection and
// onResignation: when the node becomes a partition's leader, the
// partition is replayed and its groups served; when leadership moves
// away, its groups are dropped from memory and their waiting requests
// answered NOT_COORDINATOR, so clients find the new coordinator. Requests
// for a group of a partition led elsewhere get NOT_COORDINATOR, and while
// it loads COORDINATOR_LOAD_IN_PROGRESS; both are retriable.

// ownState is where this node stands with one offsets partition.
type ownState uint8

const (
	notOwned ownState = iota
	loading
	owned
)

// ownsLocked is nil when this node serves partition p's groups, else the
// error a request for one of them gets. The caller holds c.mu.
func (c *Coordinator) ownsLocked(p int32) error {
	switch c.owned[p] {
	case owned:
		return nil
	case loading:
		return kerr.CoordinatorLoadInProgress
	}
	return kerr.NotCoordinator
}

// Sync brings partition p in line with the log's leadership (Log.Leads)
// as it is when Sync runs: it loads the partition's groups when this node
// leads it and does not serve them yet, and drops them when it serves
// them and no longer leads. Calls may come in any order and any number of
// times: each looks at the leadership now. The broker calls it whenever a
// partition of the offsets topic may have changed leader here.
func (c *Coordinator) Sync(p int32) {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if c.parts == 0 {
		n, err := c.log.Open(false, c.cfg.Partitions)
		if err != nil || n == 0 {
			c.mu.Unlock()
			return
		}
		c.parts = n
	}
	n, state := c.parts, c.owned[p]
	c.mu.Unlock()
	leads := c.log.Leads(p)
	switch {
	case leads && state == notOwned:
		st, err := c.loadPartition(p, n)
		if err != nil {
			c.logger.Error("loading the groups of an offsets partition this node now leads", "partition", p, "err", err)
			return
		}
		c.logger.Info("now coordinating the groups of an offsets partition", "partition", p, "groups", st.groups, "offsets", st.offsets)
	case !leads && state != notOwned:
		dropped := c.unload(p)
		c.logger.Info("no longer coordinating the groups of an offsets partition: its leadership moved", "partition", p, "groups", dropped)
	}
}

// unload drops partition p's groups. The caller holds c.syncMu.
func (c *Coordinator) unload(p int32) int {
	c.mu.Lock()
	delete(c.owned, p)
	var gone []*entry
	for id, e := range c.groups {
		if e.partition == p {
			gone = append(gone, e)
			delete(c.groups, id)
		}
	}
	c.mu.Unlock()
	for _, e := range gone {
		e.mu.Lock()
		e.removed = true
		if e.stopTimer != nil {
			e.stopTimer()
		}
		close(e.gone)
		e.mu.Unlock()
	}
	return len(gone)
}
