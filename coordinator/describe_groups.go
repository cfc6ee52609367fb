package coordinator

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// authorizedOpsOmitted is Kafka's "not requested" value for
// authorized_operations; groupOps is what the one principal of a cluster
// without ACLs may do to a group: READ, DELETE and DESCRIBE.
const (
	authorizedOpsOmitted = -2147483648
	groupOps             = 1<<3 | 1<<6 | 1<<8
)

// DescribeGroups answers a DescribeGroups for classic groups. A group that
// does not exist, or uses the KIP-848 protocol (described by
// ConsumerGroupDescribe), answers GROUP_ID_NOT_FOUND from v6 (KIP-1043) and
// the Dead state before, as Kafka does.
func (c *Coordinator) DescribeGroups(req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, id := range req.Groups {
		resp.Groups = append(resp.Groups, c.describeGroup(req, id))
	}
	return resp
}

func (c *Coordinator) describeGroup(req *kmsg.DescribeGroupsRequest, id string) kmsg.DescribeGroupsResponseGroup {
	g := kmsg.NewDescribeGroupsResponseGroup()
	g.Group = id
	g.AuthorizedOperations = authorizedOpsOmitted
	if req.IncludeAuthorizedOperations {
		g.AuthorizedOperations = groupOps
	}
	notFound := func(why string) kmsg.DescribeGroupsResponseGroup {
		g.State = "Dead"
		if req.Version >= 6 {
			g.ErrorCode = kerr.GroupIDNotFound.Code
			g.ErrorMessage = kmsg.StringPtr(why)
		}
		return g
	}
	if id == "" {
		g.ErrorCode = kerr.InvalidGroupID.Code
		return g
	}
	e, err := c.lookup(id, false)
	if err != nil {
		g.ErrorCode = errorCode(err)
		return g
	}
	if e == nil {
		return notFound(fmt.Sprintf("group %s does not exist", id))
	}
	defer e.mu.Unlock()
	if e.classic == nil {
		return notFound(fmt.Sprintf("group %s is not a classic group; use ConsumerGroupDescribe", id))
	}
	cg := e.classic
	g.State = cg.State().String()
	g.ProtocolType = cg.ProtocolType()
	g.Protocol = cg.Protocol()
	for _, m := range cg.Members() {
		rm := kmsg.NewDescribeGroupsResponseGroupMember()
		rm.MemberID, rm.ClientID, rm.ClientHost = m.MemberID, m.ClientID, m.ClientHost
		if m.InstanceID != "" {
			rm.InstanceID = kmsg.StringPtr(m.InstanceID)
		}
		rm.ProtocolMetadata, rm.MemberAssignment = m.Metadata, m.Assignment
		if rm.ProtocolMetadata == nil {
			rm.ProtocolMetadata = []byte{}
		}
		if rm.MemberAssignment == nil {
			rm.MemberAssignment = []byte{}
		}
		g.Members = append(g.Members, rm)
	}
	return g
}
