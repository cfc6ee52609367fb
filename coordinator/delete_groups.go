package coordinator

import (
	"errors"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteGroups answers a DeleteGroups: an empty group is deleted with its
// committed offsets (tombstones for each, then the group's); a group with
// members answers NON_EMPTY_GROUP.
func (c *Coordinator) DeleteGroups(req *kmsg.DeleteGroupsRequest) *kmsg.DeleteGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, id := range req.Groups {
		g := kmsg.NewDeleteGroupsResponseGroup()
		g.Group = id
		if err := c.deleteGroup(id); err != nil {
			g.ErrorCode = errorCode(err)
			if req.Version >= 3 {
				g.ErrorMessage = kmsg.StringPtr(err.Error())
			}
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp
}

func (c *Coordinator) deleteGroup(id string) error {
	if id == "" {
		return kerr.InvalidGroupID
	}
	e, err := c.lookup(id, false)
	if err != nil {
		return err
	}
	if e == nil {
		return kerr.GroupIDNotFound
	}
	if !e.empty() {
		e.mu.Unlock()
		return kerr.NonEmptyGroup
	}
	var recs []Record
	topics := make([]string, 0, len(e.offsets))
	for t := range e.offsets {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	for _, t := range topics {
		for p := range e.offsets[t] {
			recs = append(recs, offsetRecord(id, t, p, nil))
		}
	}
	recs = append(recs, Record{Key: groupKey(keyGroupMetadata, id)}, Record{Key: groupKey(keyConsumerGroupV1, id)})
	// Lookups wait for the deletion (lookup), so nothing joins or commits
	// to the group between this decision and its tombstones.
	var result error
	e.deleting = c.enqueue(e, recs, func(err error) {
		if err != nil {
			c.logger.Warn("group not deleted", "group", id, "err", err)
			result = kerr.CoordinatorNotAvailable
			return
		}
		result = c.dropGroup(e)
		if result == nil {
			c.logger.Info("group deleted", "group", id)
		}
	})
	_ = c.release(e, e.deleting)
	return result
}

// dropGroup ends the group's state machine and forgets the group, once its
// tombstones are in the log. The caller holds e.mu.
func (c *Coordinator) dropGroup(e *entry) error {
	var err error
	if e.consumer != nil {
		err = e.consumer.Delete()
	} else {
		err = e.classic.Delete()
	}
	if err != nil && !errors.Is(err, errNotAvailable) {
		return err
	}
	c.forget(e)
	return nil
}
