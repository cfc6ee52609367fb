package coordinator

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/group"
)

// OffsetFetch answers an OffsetFetch: one group before v8, several from v8,
// topics by ID from v10. A partition without a committed offset answers -1;
// asking for no topics returns every offset the group has. With no
// transactions there are never pending transactional offsets, so
// require_stable needs no waiting.
func (c *Coordinator) OffsetFetch(req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version < 8 {
		q := kmsg.NewOffsetFetchRequestGroup()
		q.Group = req.Group
		if req.Topics != nil {
			q.Topics = []kmsg.OffsetFetchRequestGroupTopic{}
			for _, t := range req.Topics {
				qt := kmsg.NewOffsetFetchRequestGroupTopic()
				qt.Topic, qt.Partitions = t.Topic, t.Partitions
				q.Topics = append(q.Topics, qt)
			}
		}
		g := c.fetchGroup(req.Version, q)
		resp.ErrorCode = g.ErrorCode
		for _, t := range g.Topics {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetFetchResponseTopicPartition()
				rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata, rp.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode
				if req.Version <= 1 && g.ErrorCode != 0 {
					// v0-1 have no group-level error code.
					rp.ErrorCode = g.ErrorCode
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	for _, q := range req.Groups {
		resp.Groups = append(resp.Groups, c.fetchGroup(req.Version, q))
	}
	return resp
}

func (c *Coordinator) fetchGroup(version int16, q kmsg.OffsetFetchRequestGroup) kmsg.OffsetFetchResponseGroup {
	out := kmsg.NewOffsetFetchResponseGroup()
	out.Group = q.Group
	if q.Group == "" && version >= 8 {
		out.ErrorCode = kerr.InvalidGroupID.Code
		return out
	}
	e, err := c.lookup(q.Group, false)
	if err != nil {
		out.ErrorCode = errorCode(err)
		return out
	}
	var offsets map[string]map[int32]offset
	if e != nil {
		defer e.mu.Unlock()
		if e.consumer != nil && q.MemberID != nil {
			if err := e.consumer.ValidateFetch(*q.MemberID, q.MemberEpoch); err != nil {
				out.ErrorCode = errorCode(err)
				return out
			}
		}
		offsets = e.offsets
	}
	topics := c.topics()
	part := func(topic string, p int32) kmsg.OffsetFetchResponseGroupTopicPartition {
		rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch = p, -1, -1
		rp.Metadata = kmsg.StringPtr("")
		if o, ok := offsets[topic][p]; ok {
			rp.Offset, rp.LeaderEpoch, rp.Metadata = o.Offset, o.LeaderEpoch, kmsg.StringPtr(o.Metadata)
		}
		return rp
	}
	if q.Topics == nil {
		// Every committed offset, sorted so answers are stable.
		names := make([]string, 0, len(offsets))
		for t := range offsets {
			names = append(names, t)
		}
		sort.Strings(names)
		for _, name := range names {
			rt := kmsg.NewOffsetFetchResponseGroupTopic()
			rt.Topic = name
			if version >= 10 {
				meta, ok := topics.Topics[name]
				if !ok {
					continue // deleted: it has no ID to answer with
				}
				rt.TopicID = meta.ID
			}
			ps := make([]int32, 0, len(offsets[name]))
			for p := range offsets[name] {
				ps = append(ps, p)
			}
			sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
			for _, p := range ps {
				rt.Partitions = append(rt.Partitions, part(name, p))
			}
			out.Topics = append(out.Topics, rt)
		}
		return out
	}
	for _, qt := range q.Topics {
		rt := kmsg.NewOffsetFetchResponseGroupTopic()
		rt.Topic, rt.TopicID = qt.Topic, qt.TopicID
		name := qt.Topic
		var meta group.TopicMeta
		known := true
		if version >= 10 {
			meta, known = topics.ByID(qt.TopicID)
			name = meta.Name
		}
		for _, p := range qt.Partitions {
			rp := part(name, p)
			if !known {
				rp.ErrorCode = kerr.UnknownTopicID.Code
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		out.Topics = append(out.Topics, rt)
	}
	return out
}
