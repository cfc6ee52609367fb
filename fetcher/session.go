package fetcher

import (
	"errors"
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// session is the follower's side of one incremental fetch session with
// its leader (KIP-227, Kafka's FetchSessionHandler): after one full fetch
// the leader remembers the partitions and what each asked, so a request
// names only the partitions whose fetch state changed (and forgets those
// that left), and the answer carries only partitions with news. With
// hundreds of partitions per fetcher this turns a request of every
// partition, several times a second, into a few bytes.
//
// It is I/O-free: build fills a request from the partitions to fetch now,
// and done adopts what the leader answered (or resets after an error).
type session struct {
	id int32 // the leader's session id, 0 for none
	// epoch is the next request's epoch; 0 makes it a full request that
	// asks for a new session (and closes session id on the leader).
	epoch int32
	// inLeader is what the leader's session holds per partition, as of
	// the last answered request.
	inLeader map[partKey]sessionEntry
}

// sessionEntry is what one partition asked in the leader's session: a
// partition asking the same again is left out of an incremental request.
type sessionEntry struct {
	topicID            [16]byte
	fetchOffset        int64
	currentLeaderEpoch int32
	lastFetchedEpoch   int32
	logStart           int64
	maxBytes           int32
}

// pendingSession is what one request asked, to adopt when it is answered.
type pendingSession struct {
	full bool
	next map[partKey]sessionEntry
}

// build sets the request's session fields and partitions for batch:
// every partition when the request is full, otherwise those that are new
// or changed, with the leader's other partitions forgotten.
func (s *session) build(req *kmsg.FetchRequest, batch []sent, maxBytes int32) pendingSession {
	next := make(map[partKey]sessionEntry, len(batch))
	full := s.epoch == 0
	req.SessionID, req.SessionEpoch = s.id, s.epoch
	topics := map[string]int{}
	for _, b := range batch {
		k := partKey{b.ps.p.Topic, b.ps.p.Index}
		e := sessionEntry{topicID: b.ps.p.TopicID, fetchOffset: b.req.FetchOffset, currentLeaderEpoch: b.req.CurrentLeaderEpoch,
			lastFetchedEpoch: b.req.LastFetchedEpoch, logStart: b.logStart, maxBytes: maxBytes}
		next[k] = e
		if old, ok := s.inLeader[k]; !full && ok && old == e {
			continue
		}
		i, ok := topics[k.topic]
		if !ok {
			i = len(req.Topics)
			topics[k.topic] = i
			t := kmsg.NewFetchRequestTopic()
			t.Topic, t.TopicID = k.topic, e.topicID
			req.Topics = append(req.Topics, t)
		}
		p := kmsg.NewFetchRequestTopicPartition()
		p.Partition = k.index
		p.CurrentLeaderEpoch = e.currentLeaderEpoch
		p.FetchOffset = e.fetchOffset
		p.LastFetchedEpoch = e.lastFetchedEpoch
		p.LogStartOffset = e.logStart
		p.PartitionMaxBytes = e.maxBytes
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, p)
	}
	if !full {
		forgotten := map[string]int{}
		for k, e := range s.inLeader {
			if _, kept := next[k]; kept {
				continue
			}
			i, ok := forgotten[k.topic]
			if !ok {
				i = len(req.ForgottenTopics)
				forgotten[k.topic] = i
				req.ForgottenTopics = append(req.ForgottenTopics, kmsg.FetchRequestForgottenTopic{Topic: k.topic, TopicID: e.topicID})
			}
			req.ForgottenTopics[i].Partitions = append(req.ForgottenTopics[i].Partitions, k.index)
		}
	}
	return pendingSession{full: full, next: next}
}

// done adopts the leader's answer to the request p was built for; err is
// the request's failure (transport, or the top-level error code). Any
// failure starts a new session with the next request, as Kafka does: the
// leader may or may not have applied the request, so the partitions it
// holds are unknown.
func (s *session) done(p pendingSession, resp *kmsg.FetchResponse, err error) {
	if err != nil {
		// Keep the id: the next, full, request closes that session on
		// the leader (Kafka's nextCloseExisting).
		s.epoch, s.inLeader = 0, nil
		return
	}
	switch {
	case p.full && resp.SessionID == 0:
		s.id, s.epoch, s.inLeader = 0, 0, nil // the leader keeps no session: full again
		return
	case p.full:
		s.id, s.epoch = resp.SessionID, 1
	default:
		s.epoch = nextEpoch(s.epoch)
	}
	s.inLeader = p.next
}

// isSessionError reports whether a top-level Fetch error only ends the
// session (FETCH_SESSION_ID_NOT_FOUND after a leader restart or eviction,
// INVALID_FETCH_SESSION_EPOCH after a lost answer).
func isSessionError(err error) bool {
	return errors.Is(err, kerr.FetchSessionIDNotFound) || errors.Is(err, kerr.InvalidFetchSessionEpoch)
}

// nextEpoch is the epoch after e; it wraps to 1, as Kafka's, since 0
// means "create" and -1 "close".
func nextEpoch(e int32) int32 {
	if e == math.MaxInt32 {
		return 1
	}
	return e + 1
}
