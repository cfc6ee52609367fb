package coordinator

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/group"
)

// JoinGroup answers a JoinGroup. It blocks while the group rebalances, up to
// the rebalance timeout, as Kafka's JoinGroup does.
func (c *Coordinator) JoinGroup(req *kmsg.JoinGroupRequest, cl Client) *kmsg.JoinGroupResponse {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.Generation = -1
	resp.MemberID = req.MemberID
	fail := func(err error) *kmsg.JoinGroupResponse {
		resp.ErrorCode = errorCode(err)
		return resp
	}
	if req.Group == "" {
		return fail(kerr.InvalidGroupID)
	}
	if req.InstanceID != nil && *req.InstanceID == "" {
		return fail(kerr.InvalidRequest)
	}
	e, err := c.lookup(req.Group, true)
	if err != nil {
		return fail(err)
	}
	if err := c.useClassic(e); err != nil {
		e.mu.Unlock()
		return fail(err)
	}
	jr := group.JoinRequest{
		MemberID:             req.MemberID,
		ClientID:             cl.ID,
		ClientHost:           cl.Host,
		SessionTimeout:       time.Duration(req.SessionTimeoutMillis) * time.Millisecond,
		RebalanceTimeout:     time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond,
		ProtocolType:         req.ProtocolType,
		RequireKnownMemberID: req.Version >= 4,
	}
	if req.Version == 0 {
		// v0 has no rebalance timeout; the session timeout served as both.
		jr.RebalanceTimeout = jr.SessionTimeout
	}
	if req.InstanceID != nil {
		jr.InstanceID = *req.InstanceID
	}
	for _, p := range req.Protocols {
		jr.Protocols = append(jr.Protocols, group.Protocol{Name: p.Name, Metadata: p.Metadata})
	}
	res, tk := e.classic.Join(c.now(), jr)
	d, parked, err := c.finish(e, tk)
	if err != nil {
		return fail(err)
	}
	if parked {
		res = d.Join
	}
	resp.ErrorCode = errorCode(res.Err)
	resp.MemberID = res.MemberID
	resp.Generation = res.Generation
	if res.Err != nil {
		return resp
	}
	resp.ProtocolType = kmsg.StringPtr(res.ProtocolType)
	resp.Protocol = kmsg.StringPtr(res.Protocol)
	resp.LeaderID = res.Leader
	resp.SkipAssignment = res.SkipAssignment && req.Version >= 9
	if res.SkipAssignment && req.Version < 9 {
		// Before KIP-814 a returning static leader was not told the
		// members, so it could not reassign.
		return resp
	}
	for _, m := range res.Members {
		rm := kmsg.NewJoinGroupResponseMember()
		rm.MemberID, rm.ProtocolMetadata = m.MemberID, m.Metadata
		if m.InstanceID != "" {
			rm.InstanceID = kmsg.StringPtr(m.InstanceID)
		}
		resp.Members = append(resp.Members, rm)
	}
	return resp
}
