package coordinator

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/group"
)

// SyncGroup answers a SyncGroup. A follower that syncs before the leader
// waits for the leader's assignment.
func (c *Coordinator) SyncGroup(req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	fail := func(err error) *kmsg.SyncGroupResponse {
		resp.ErrorCode = errorCode(err)
		return resp
	}
	e, err := c.classicGroup(req.Group)
	if err != nil {
		return fail(err)
	}
	sr := group.SyncRequest{
		MemberID:   req.MemberID,
		Generation: req.Generation,
	}
	if req.InstanceID != nil {
		sr.InstanceID = *req.InstanceID
	}
	if req.ProtocolType != nil {
		sr.ProtocolType = *req.ProtocolType
	}
	if req.Protocol != nil {
		sr.Protocol = *req.Protocol
	}
	if len(req.GroupAssignment) > 0 {
		sr.Assignments = make(map[string][]byte, len(req.GroupAssignment))
		for _, a := range req.GroupAssignment {
			sr.Assignments[a.MemberID] = a.MemberAssignment
		}
	}
	res, tk := e.classic.Sync(c.now(), sr)
	d, parked, err := c.finish(e, tk)
	if err != nil {
		return fail(err)
	}
	if parked {
		res = d.Sync
	}
	if res.Err != nil {
		return fail(res.Err)
	}
	resp.ProtocolType = kmsg.StringPtr(res.ProtocolType)
	resp.Protocol = kmsg.StringPtr(res.Protocol)
	resp.MemberAssignment = res.Assignment
	if resp.MemberAssignment == nil {
		resp.MemberAssignment = []byte{}
	}
	return resp
}
