package group

import (
	"regexp"
	"time"
)

// bump starts a new group epoch and computes its target assignment at once,
// so the group never stays in Assigning.
func (g *ConsumerGroup) bump() {
	g.epoch++
	spec := &assignSpec{partitions: map[[16]byte]int32{}, current: g.target}
	for _, t := range g.meta {
		spec.partitions[t.ID] = t.Partitions
	}
	for _, m := range g.sortedMembers() {
		am := assignMember{id: m.id}
		for id := range m.subscribed {
			am.topics = append(am.topics, id)
		}
		sortIDs(am.topics)
		spec.members = append(spec.members, am)
	}
	assign, ok := serverAssignors[g.preferredAssignor()]
	if !ok {
		assign = assignUniform
	}
	g.target = assign(spec)
	g.assignmentEpoch = g.epoch
	g.touch()
}

// refresh re-resolves the members' subscriptions against the topics when
// they may have changed: a new image version, or a subscription that changed
// since the last time. It reports whether what any member subscribes to, or
// the metadata of the subscribed topics, changed (the caller bumps the
// epoch). A nil image resolves against the metadata last seen. Partitions
// of topics gone from the image are dropped from every member at once:
// nobody can own them.
func (g *ConsumerGroup) refresh(topics *TopicImage) bool {
	imageChanged := topics != nil && (!g.imageSeen || topics.Version != g.imageVersion)
	if !imageChanged && !g.subsDirty {
		return false
	}
	src := g.meta
	if topics != nil {
		src = topics.Topics
	}
	matches := map[string][]string{} // regex → matching topic names
	regexes := map[string]*regexp.Regexp{}
	meta := map[string]TopicMeta{}
	changed := false
	for _, m := range g.sortedMembers() {
		sub := map[[16]byte]bool{}
		add := func(name string) {
			if t, ok := src[name]; ok {
				t.Name = name
				sub[t.ID] = true
				meta[name] = t
			}
		}
		for _, n := range m.names {
			add(n)
		}
		if m.regex != "" {
			ns, ok := matches[m.regex]
			if !ok {
				re := g.regexes[m.regex]
				if re == nil {
					re, _ = compileFull(m.regex) // validated when it was set
				}
				regexes[m.regex] = re
				if re != nil {
					for name := range src {
						if re.MatchString(name) {
							ns = append(ns, name)
						}
					}
				}
				matches[m.regex] = ns
			}
			for _, n := range ns {
				add(n)
			}
		}
		if !sameIDSet(sub, m.subscribed) {
			m.subscribed = sub
			changed = true
		}
	}
	g.regexes = regexes
	if !sameMeta(meta, g.meta) {
		g.meta = meta
		changed = true
		g.touch()
	}
	g.subsDirty = false
	if topics != nil {
		g.imageVersion, g.imageSeen = topics.Version, true
		if imageChanged {
			g.purge(topics)
		}
	}
	for name, t := range g.meta {
		g.names[t.ID] = name
	}
	return changed
}

// purge drops partitions whose topic is gone from the image (or that the
// topic no longer has) from every member, and records the names of the
// topics the members hold.
func (g *ConsumerGroup) purge(topics *TopicImage) {
	byID := make(map[[16]byte]TopicMeta, len(topics.Topics))
	for name, t := range topics.Topics {
		t.Name = name
		byID[t.ID] = t
	}
	valid := func(p tpKey) bool {
		t, ok := byID[p.id]
		return ok && p.p >= 0 && p.p < t.Partitions
	}
	g.names = map[[16]byte]string{} // refresh adds the subscribed topics
	for _, m := range g.sortedMembers() {
		for _, held := range []map[tpKey]int32{m.assigned, m.revoking} {
			for p := range held {
				if !valid(p) {
					delete(held, p)
					g.disown(p, m)
					g.touch()
				} else {
					g.names[p.id] = byID[p.id].Name
				}
			}
		}
		if m.state == msUnrevoked && len(m.revoking) == 0 {
			m.state, m.revokeBy = msStable, time.Time{}
		}
	}
}

func sameIDSet(a, b map[[16]byte]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for id := range a {
		if !b[id] {
			return false
		}
	}
	return true
}

func sameMeta(a, b map[string]TopicMeta) bool {
	if len(a) != len(b) {
		return false
	}
	for n, t := range a {
		if u, ok := b[n]; !ok || u != t {
			return false
		}
	}
	return true
}

// reconcile moves m one step toward its target assignment, as Kafka's
// CurrentAssignmentBuilder does. owned is what the member reports owning
// (nil: not reported, so it is taken to still own everything).
func (g *ConsumerGroup) reconcile(now time.Time, m *cmember, owned tpSet) {
	switch m.state {
	case msUnrevoked:
		if ownsAny(owned, m.revoking) {
			return // still revoking
		}
		for p := range m.revoking {
			g.disown(p, m)
		}
		clear(m.revoking)
		m.state, m.revokeBy = msStable, time.Time{}
		g.touch()
	case msStable:
		if m.epoch == g.assignmentEpoch {
			return
		}
	}
	g.advance(now, m, owned)
}

// advance computes m's next assignment toward its target: partitions to give
// up first (m stays at its epoch, unrevoked), else everything in the target
// that nobody else holds, at the target epoch.
func (g *ConsumerGroup) advance(now time.Time, m *cmember, owned tpSet) {
	target := g.target[m.id]
	var revoke []tpKey
	for p := range m.assigned {
		if !target.has(p) {
			revoke = append(revoke, p)
		}
	}
	if len(revoke) > 0 && ownsAny(owned, tpSetOf(revoke)) {
		for _, p := range revoke {
			m.revoking[p] = m.assigned[p]
			delete(m.assigned, p)
		}
		m.state, m.revokeBy = msUnrevoked, now.Add(m.rebalanceTimeout)
		g.touch()
		return
	}
	changed := len(revoke) > 0
	for _, p := range revoke { // the member no longer has them
		delete(m.assigned, p)
		g.disown(p, m)
	}
	state := msStable
	for p := range target {
		if _, ok := m.assigned[p]; ok {
			continue
		}
		if o, held := g.owners[p]; held && o != m.id {
			state = msUnreleased
			continue
		}
		m.assigned[p] = g.assignmentEpoch
		g.owners[p] = m.id
		changed = true
	}
	if changed || m.state != state || m.epoch != g.assignmentEpoch {
		m.setEpoch(g.assignmentEpoch)
		m.state, m.revokeBy = state, time.Time{}
		g.touch()
	}
}

// ownsAny reports whether the member may still own a partition of ps; with
// owned nil (not reported) it is assumed to.
func ownsAny[V any](owned tpSet, ps map[tpKey]V) bool {
	if len(ps) == 0 {
		return false
	}
	if owned == nil {
		return true
	}
	for p := range ps {
		if owned.has(p) {
			return true
		}
	}
	return false
}

func tpSetOf(ps []tpKey) tpSet {
	s := make(tpSet, len(ps))
	for _, p := range ps {
		s[p] = struct{}{}
	}
	return s
}
