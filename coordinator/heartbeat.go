package coordinator

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/group"
)

// Heartbeat answers a classic group Heartbeat. REBALANCE_IN_PROGRESS is how
// a member learns it must rejoin.
func (c *Coordinator) Heartbeat(req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	e, err := c.lookup(req.Group, false)
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return resp
	}
	if e == nil {
		resp.ErrorCode = kerr.UnknownMemberID.Code
		return resp
	}
	defer e.mu.Unlock()
	if e.classic == nil {
		resp.ErrorCode = kerr.UnknownMemberID.Code
		return resp
	}
	hr := group.HeartbeatRequest{MemberID: req.MemberID, Generation: req.Generation}
	if req.InstanceID != nil {
		hr.InstanceID = *req.InstanceID
	}
	resp.ErrorCode = errorCode(e.classic.Heartbeat(c.now(), hr))
	c.settle(e)
	return resp
}
