package coordinator

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ConsumerGroupDescribe answers a KIP-848 ConsumerGroupDescribe; classic
// groups are described by DescribeGroups and answer GROUP_ID_NOT_FOUND here,
// as in Kafka.
func (c *Coordinator) ConsumerGroupDescribe(req *kmsg.ConsumerGroupDescribeRequest) *kmsg.ConsumerGroupDescribeResponse {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	topics := c.topics()
	for _, id := range req.Groups {
		g := kmsg.NewConsumerGroupDescribeResponseGroup()
		g.Group = id
		g.AuthorizedOperations = authorizedOpsOmitted
		fail := func(err error, msg string) {
			g.ErrorCode = errorCode(err)
			g.ErrorMessage = kmsg.StringPtr(msg)
			resp.Groups = append(resp.Groups, g)
		}
		if id == "" {
			fail(kerr.InvalidGroupID, "group id must not be empty")
			continue
		}
		e, err := c.lookup(id, false)
		if err != nil {
			fail(err, err.Error())
			continue
		}
		if e == nil {
			fail(kerr.GroupIDNotFound, "group "+id+" does not exist")
			continue
		}
		if e.consumer == nil {
			e.mu.Unlock()
			fail(kerr.GroupIDNotFound, "group "+id+" is not a consumer group; use DescribeGroups")
			continue
		}
		g = e.consumer.Describe(topics, req.IncludeAuthorizedOperations)
		e.mu.Unlock()
		if req.IncludeAuthorizedOperations {
			g.AuthorizedOperations = groupOps
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp
}
