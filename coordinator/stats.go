package coordinator

// GroupStats is one group as metrics see it.
type GroupStats struct {
	ID      string
	Type    string // classic or consumer
	State   string // Kafka's state name, e.g. Stable, Empty
	Members int
	// Offsets are the committed offsets, topic → partition → offset.
	Offsets map[string]map[int32]int64
}

// Stats returns every live group with its committed offsets. It takes each
// group's lock briefly, one group at a time, so it never stalls the groups
// for the length of a scrape.
func (c *Coordinator) Stats() []GroupStats {
	entries := c.entries()
	out := make([]GroupStats, 0, len(entries))
	for _, e := range entries {
		e.mu.Lock()
		if e.removed {
			e.mu.Unlock()
			continue
		}
		s := GroupStats{ID: e.id, Type: e.groupType(), State: e.state(), Members: e.members(), Offsets: make(map[string]map[int32]int64, len(e.offsets))}
		for t, ps := range e.offsets {
			m := make(map[int32]int64, len(ps))
			for p, o := range ps {
				m[p] = o.Offset
			}
			s.Offsets[t] = m
		}
		e.mu.Unlock()
		out = append(out, s)
	}
	return out
}
