package coordinator

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ConsumerGroupHeartbeat answers a KIP-848 heartbeat: join (epoch 0),
// heartbeat, or leave (epoch -1, or -2 for a static member that will
// return). It never blocks; the group's state machine answers at once.
func (c *Coordinator) ConsumerGroupHeartbeat(req *kmsg.ConsumerGroupHeartbeatRequest, cl Client) *kmsg.ConsumerGroupHeartbeatResponse {
	fail := func(err error, msg string) *kmsg.ConsumerGroupHeartbeatResponse {
		resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
		resp.ErrorCode = errorCode(err)
		if msg != "" {
			resp.ErrorMessage = kmsg.StringPtr(msg)
		}
		return resp
	}
	if req.Group == "" {
		return fail(kerr.InvalidRequest, "group id must not be empty")
	}
	e, err := c.lookup(req.Group, req.MemberEpoch == 0)
	if err != nil {
		return fail(err, "")
	}
	if e == nil {
		return fail(kerr.UnknownMemberID, "group "+req.Group+" does not exist")
	}
	if err := c.useConsumer(e); err != nil {
		e.mu.Unlock()
		return fail(err, err.Error())
	}
	resp := e.consumer.Heartbeat(c.now(), req, cl.ID, cl.Host, c.topics())
	resp.Version = req.Version
	_ = c.release(e, c.settle(e))
	return resp
}
