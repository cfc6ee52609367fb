package coordinator

import (
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListGroups answers a ListGroups, with the state filter of v4 (KIP-518) and
// the type filter of v5 (KIP-848); both match case-insensitively, as Kafka's
// do.
func (c *Coordinator) ListGroups(req *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		resp.ErrorCode = errNotAvailable.Code
		return resp
	}
	matches := func(filter []string, v string) bool {
		if len(filter) == 0 {
			return true
		}
		for _, f := range filter {
			if strings.EqualFold(f, v) {
				return true
			}
		}
		return false
	}
	for _, e := range c.entries() {
		e.mu.Lock()
		if !e.removed && matches(req.StatesFilter, e.state()) && matches(req.TypesFilter, e.groupType()) {
			g := kmsg.NewListGroupsResponseGroup()
			g.Group, g.ProtocolType, g.GroupState, g.GroupType = e.id, e.protocolType(), e.state(), e.groupType()
			resp.Groups = append(resp.Groups, g)
		}
		e.mu.Unlock()
	}
	sort.Slice(resp.Groups, func(i, j int) bool { return resp.Groups[i].Group < resp.Groups[j].Group })
	return resp
}
