package coordinator

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/group"
)

// LeaveGroup answers a LeaveGroup: one member before v3, a batch of members
// (by member id or, for static members, instance id) from v3 (KIP-345).
func (c *Coordinator) LeaveGroup(req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	var leaving []group.LeaveMember
	if req.Version < 3 {
		leaving = []group.LeaveMember{{MemberID: req.MemberID}}
	} else {
		for _, m := range req.Members {
			lm := group.LeaveMember{MemberID: m.MemberID}
			if m.InstanceID != nil {
				lm.InstanceID = *m.InstanceID
			}
			leaving = append(leaving, lm)
		}
	}
	e, err := c.classicGroup(req.Group)
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return resp
	}
	errs := e.classic.Leave(c.now(), leaving)
	_ = c.release(e, c.settle(e))
	if req.Version < 3 {
		resp.ErrorCode = errorCode(errs[0])
		return resp
	}
	for i, m := range req.Members {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID = m.MemberID, m.InstanceID
		rm.ErrorCode = errorCode(errs[i])
		resp.Members = append(resp.Members, rm)
	}
	return resp
}
