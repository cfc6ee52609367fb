package coordinator

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/group"
)

// OffsetCommit answers an OffsetCommit. Validation is per request (the
// member and its generation or epoch) and per partition (the topic and
// partition exist, the metadata fits); the partitions that pass are written
// in one batch, and the answer comes after the append, so an acknowledged
// commit survives a crash.
func (c *Coordinator) OffsetCommit(req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	codes := make([][]int16, len(req.Topics))
	for i, t := range req.Topics {
		codes[i] = make([]int16, len(t.Partitions))
	}
	answer := func() *kmsg.OffsetCommitResponse {
		for i, t := range req.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			for j, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, codes[i][j]
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	failAll := func(code int16) *kmsg.OffsetCommitResponse {
		for i := range codes {
			for j := range codes[i] {
				codes[i][j] = code
			}
		}
		return answer()
	}
	if req.Group == "" {
		return failAll(kerr.InvalidGroupID.Code)
	}
	if req.Version == 0 {
		// v0 predates group management: always a standalone commit.
		req.Generation, req.MemberID = -1, ""
	}
	e, err := c.lookup(req.Group, req.Generation < 0)
	if err != nil {
		return failAll(errorCode(err))
	}
	if e == nil {
		// Only a commit without group management may create a group.
		if req.Version >= 9 {
			return failAll(kerr.GroupIDNotFound.Code)
		}
		return failAll(kerr.IllegalGeneration.Code)
	}
	_ = c.release(e, c.queueCommit(e, req, codes))
	return answer()
}

// queueCommit validates a commit against the group (e.mu held) and queues
// the partitions that pass; codes gets each partition's error, set by the
// write's apply for those queued. It returns nil when nothing is queued.
func (c *Coordinator) queueCommit(e *entry, req *kmsg.OffsetCommitRequest, codes [][]int16) *write {
	failAll := func(code int16) *write {
		for i := range codes {
			for j := range codes[i] {
				codes[i][j] = code
			}
		}
		return nil
	}
	var instanceID string
	if req.InstanceID != nil {
		instanceID = *req.InstanceID
	}
	// Request-level checks of the classic protocol; KIP-848 checks each
	// partition against the member's assignment (KIP-1251).
	if e.classic != nil {
		if err := e.classic.ValidateCommit(req.MemberID, instanceID, req.Generation); err != nil {
			return failAll(errorCode(err))
		}
	} else if req.Version < 9 && (req.MemberID != "" || req.Generation >= 0) {
		return failAll(kerr.UnsupportedVersion.Code)
	}
	topics := c.topics()
	now := c.now()
	type pending struct {
		i, j  int
		topic string
		o     offset
	}
	var (
		todo []pending
		recs []Record
	)
	for i, t := range req.Topics {
		name := t.Topic
		var meta group.TopicMeta
		var known bool
		if req.Version >= 10 {
			meta, known = topics.ByID(t.TopicID)
			name = meta.Name
		} else {
			meta, known = topics.Topics[name]
		}
		for j, p := range t.Partitions {
			switch {
			case !known && req.Version >= 10:
				codes[i][j] = kerr.UnknownTopicID.Code
				continue
			case !known || p.Partition < 0 || p.Partition >= meta.Partitions:
				codes[i][j] = kerr.UnknownTopicOrPartition.Code
				continue
			case p.Metadata != nil && len(*p.Metadata) > c.cfg.MaxMetadataBytes:
				codes[i][j] = kerr.OffsetMetadataTooLarge.Code
				continue
			}
			if e.consumer != nil {
				if err := e.consumer.ValidateCommit(req.MemberID, req.Generation, name, p.Partition); err != nil {
					codes[i][j] = errorCode(err)
					continue
				}
			}
			o := offset{Offset: p.Offset, LeaderEpoch: p.LeaderEpoch, CommitTime: now}
			if req.Version < 6 {
				o.LeaderEpoch = -1
			}
			if p.Metadata != nil {
				o.Metadata = *p.Metadata
			}
			todo = append(todo, pending{i, j, name, o})
			recs = append(recs, offsetRecord(e.id, name, p.Partition, &o))
		}
	}
	if len(recs) == 0 {
		return nil
	}
	// Applied in queue order, so a later commit of the same partition,
	// queued after this one, also lands after it in memory as in the log.
	return c.enqueue(e, recs, func(err error) {
		if err != nil {
			c.logger.Warn("offset commit not written", "group", e.id, "partitions", len(recs), "err", err)
			code := appendErrorCode(err)
			for _, p := range todo {
				codes[p.i][p.j] = code
			}
			return
		}
		for _, p := range todo {
			part := req.Topics[p.i].Partitions[p.j].Partition
			if e.offsets[p.topic] == nil {
				e.offsets[p.topic] = map[int32]offset{}
			}
			e.offsets[p.topic][part] = p.o
		}
		// Within a release, which appends whatever this queues.
		c.settle(e)
	})
}
