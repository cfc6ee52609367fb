package coordinator

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/group"
)

// Heartbeat answers a classic group Heartbeat. REBALANCE_IN_PROGRESS is how
// a member learns it must rejoin.
func (c *Coordinator) Heartbeat(req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	e, err := c.classicGroup(req.Group)
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return resp
	}
	hr := group.HeartbeatRequest{MemberID: req.MemberID, Generation: req.Generation}
	if req.InstanceID != nil {
		hr.InstanceID = *req.InstanceID
	}
	resp.ErrorCode = errorCode(e.classic.Heartbeat(c.now(), hr))
	_ = c.release(e, c.settle(e))
	return resp
}
