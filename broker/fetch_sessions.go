package broker

import (
	"container/list"
	"math/rand/v2"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxFetchSessions bounds the incremental fetch session cache (Kafka's
// max.incremental.fetch.session.cache.slots default).
const maxFetchSessions = 1000

// Fetch sessions (KIP-227) let a client send only the partitions whose fetch
// position changed, and get back only the partitions that have news. The
// session remembers, per partition, the client's last request and what the
// broker last told it.
type fetchSession struct {
	id    int32
	epoch int32 // the epoch the next incremental request must carry
	parts map[sessionKey]*sessionPartition
	order []sessionKey // the client's order; responses follow it
	elem  *list.Element
}

type sessionKey struct {
	topic     string
	partition int32
}

type sessionPartition struct {
	topicID            [16]byte
	fetchOffset        int64
	maxBytes           int32
	currentLeaderEpoch int32
	lastFetchedEpoch   int32
	logStartOffset     int64 // the follower's (replica fetches); -1 from consumers
	// Last values sent to the client: an incremental response includes a
	// partition only if one of these changed, it has records, or an error.
	sentHW, sentLSO, sentLogStart int64
}

type fetchSessionCache struct {
	mu   sync.Mutex
	max  int
	byID map[int32]*fetchSession
	lru  *list.List // front = most recently used
}

func newFetchSessionCache(limit int) *fetchSessionCache {
	return &fetchSessionCache{max: limit, byID: map[int32]*fetchSession{}, lru: list.New()}
}

// fetchPlan is what one Fetch request asks for after the session rules were
// applied: the partitions to consider, in order, and whether to send only
// those with news.
type fetchPlan struct {
	sess        *fetchSession // nil when sessionless
	incremental bool
	items       []fetchItem
	errCode     int16
}

// fetchItem is one partition to read, copied out of the session under its
// lock so that reading needs no lock.
type fetchItem struct {
	key                sessionKey
	topicID            [16]byte
	fetchOffset        int64
	maxBytes           int32
	currentLeaderEpoch int32
	lastFetchedEpoch   int32
	logStartOffset     int64
	sp                 *sessionPartition // nil when sessionless
}

func items(keys []sessionKey, parts map[sessionKey]*sessionPartition, inSession bool) []fetchItem {
	out := make([]fetchItem, 0, len(keys))
	for _, k := range keys {
		sp := parts[k]
		it := fetchItem{key: k, topicID: sp.topicID, fetchOffset: sp.fetchOffset, maxBytes: sp.maxBytes,
			currentLeaderEpoch: sp.currentLeaderEpoch, lastFetchedEpoch: sp.lastFetchedEpoch, logStartOffset: sp.logStartOffset}
		if inSession {
			it.sp = sp
		}
		out = append(out, it)
	}
	return out
}

// plan applies the KIP-227 rules. resolveName maps a v13+ topic ID to its
// name ("" when unknown).
func (c *fetchSessionCache) plan(req *kmsg.FetchRequest, resolveName func([16]byte) string) fetchPlan {
	c.mu.Lock()
	defer c.mu.Unlock()

	const finalEpoch = -1
	full := func() (keys []sessionKey, parts map[sessionKey]*sessionPartition) {
		parts = map[sessionKey]*sessionPartition{}
		for _, rt := range req.Topics {
			name := rt.Topic
			if req.Version >= 13 {
				name = resolveName(rt.TopicID)
			}
			for _, rp := range rt.Partitions {
				k := sessionKey{name, rp.Partition}
				if name == "" {
					// Unknown topic id: keep it distinct per id so the
					// error goes back under the id the client sent.
					k.topic = unknownTopicKey(rt.TopicID)
				}
				if _, dup := parts[k]; !dup {
					keys = append(keys, k)
				}
				parts[k] = newSessionPartition(rt.TopicID, rp)
			}
		}
		return keys, parts
	}

	if req.Version < 7 || (req.SessionID == 0 && req.SessionEpoch == finalEpoch) {
		keys, parts := full()
		return fetchPlan{items: items(keys, parts, false)}
	}
	if req.SessionEpoch == finalEpoch || req.SessionEpoch == 0 {
		// Close the named session; epoch 0 also starts a new one.
		if s := c.byID[req.SessionID]; s != nil {
			c.drop(s)
		}
		keys, parts := full()
		if req.SessionEpoch != 0 {
			return fetchPlan{items: items(keys, parts, false)}
		}
		s := &fetchSession{id: c.newID(), epoch: 1, parts: parts, order: keys}
		c.add(s)
		return fetchPlan{sess: s, items: items(keys, parts, true)}
	}
	s := c.byID[req.SessionID]
	if s == nil {
		return fetchPlan{errCode: kerr.FetchSessionIDNotFound.Code}
	}
	if s.epoch != req.SessionEpoch {
		return fetchPlan{errCode: kerr.InvalidFetchSessionEpoch.Code}
	}
	s.epoch++
	if s.epoch < 0 {
		s.epoch = 1 // epochs wrap past MaxInt32 to 1; 0 and -1 are reserved
	}
	s.resolveUnknown(resolveName)
	c.lru.MoveToFront(s.elem)
	for _, ft := range req.ForgottenTopics {
		name := ft.Topic
		if req.Version >= 13 {
			name = resolveName(ft.TopicID)
			if name == "" {
				name = unknownTopicKey(ft.TopicID)
			}
		}
		for _, p := range ft.Partitions {
			delete(s.parts, sessionKey{name, p})
		}
	}
	// The request's keys, named once: a topic created while this runs
	// must not get one name here and another in the order below (its
	// partition would be in the order but not in parts).
	var reqKeys []sessionKey
	for _, rt := range req.Topics {
		name := rt.Topic
		if req.Version >= 13 {
			if name = resolveName(rt.TopicID); name == "" {
				name = unknownTopicKey(rt.TopicID)
			}
		}
		for _, rp := range rt.Partitions {
			k := sessionKey{name, rp.Partition}
			reqKeys = append(reqKeys, k)
			if sp := s.parts[k]; sp != nil {
				sp.fetchOffset, sp.maxBytes = rp.FetchOffset, rp.PartitionMaxBytes
				sp.currentLeaderEpoch, sp.lastFetchedEpoch = rp.CurrentLeaderEpoch, rp.LastFetchedEpoch
				sp.logStartOffset = rp.LogStartOffset
				continue
			}
			s.parts[k] = newSessionPartition(rt.TopicID, rp)
		}
	}
	// Rebuild the order: keep the old order for surviving partitions, then
	// new ones in request order.
	order := s.order[:0:0]
	inOrder := map[sessionKey]bool{}
	for _, k := range s.order {
		if s.parts[k] != nil && !inOrder[k] {
			order, inOrder[k] = append(order, k), true
		}
	}
	for _, k := range reqKeys {
		if !inOrder[k] {
			order, inOrder[k] = append(order, k), true
		}
	}
	s.order = order
	return fetchPlan{sess: s, incremental: true, items: items(order, s.parts, true)}
}

// resolveUnknown names the session's partitions whose topic id this
// broker did not know when they joined it (a follower or consumer that
// fetched a new topic before its metadata arrived here). Without it they
// would answer UNKNOWN_TOPIC_OR_PARTITION for the session's life, since
// an incremental request does not name unchanged partitions again; Kafka
// resolves a session's topic ids on every request for the same reason.
func (s *fetchSession) resolveUnknown(resolveName func([16]byte) string) {
	for k, sp := range s.parts {
		if k.topic != unknownTopicKey(sp.topicID) {
			continue
		}
		name := resolveName(sp.topicID)
		if name == "" {
			continue
		}
		named := sessionKey{name, k.partition}
		delete(s.parts, k)
		if _, dup := s.parts[named]; !dup {
			s.parts[named] = sp
		}
		for i := range s.order {
			if s.order[i] == k {
				s.order[i] = named // the rebuild of the order drops a duplicate
			}
		}
	}
}

func newSessionPartition(id [16]byte, rp kmsg.FetchRequestTopicPartition) *sessionPartition {
	return &sessionPartition{
		topicID: id, fetchOffset: rp.FetchOffset, maxBytes: rp.PartitionMaxBytes,
		currentLeaderEpoch: rp.CurrentLeaderEpoch, lastFetchedEpoch: rp.LastFetchedEpoch, logStartOffset: rp.LogStartOffset,
		sentHW: -1, sentLSO: -1, sentLogStart: -1,
	}
}

// unknownTopicKey names a topic id that resolves to nothing; the NUL prefix
// cannot occur in a real topic name.
func unknownTopicKey(id [16]byte) string { return "\x00" + string(id[:]) }

func (c *fetchSessionCache) newID() int32 {
	for {
		id := rand.Int32()
		if id != 0 && c.byID[id] == nil {
			return id
		}
	}
}

func (c *fetchSessionCache) add(s *fetchSession) {
	for len(c.byID) >= c.max {
		c.drop(c.lru.Back().Value.(*fetchSession))
	}
	s.elem = c.lru.PushFront(s)
	c.byID[s.id] = s
}

func (c *fetchSessionCache) drop(s *fetchSession) {
	c.lru.Remove(s.elem)
	delete(c.byID, s.id)
}

// stats counts the sessions cached and the partitions they hold (Kafka's
// NumIncrementalFetchSessions and NumIncrementalFetchPartitionsCached).
func (c *fetchSessionCache) stats() (sessions, partitions int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.byID {
		partitions += len(s.parts)
	}
	return len(c.byID), partitions
}

// lock/unlock guard the sent* fields while a response is being decided.
func (c *fetchSessionCache) lock()   { c.mu.Lock() }
func (c *fetchSessionCache) unlock() { c.mu.Unlock() }
