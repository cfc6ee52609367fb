package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/coordinator"
	"github.com/sluice-io/sluice/netio"
)

// The group coordinator's APIs (package coordinator, one file per API
// there). They are registered here because coordinator knows nothing of
// the broker; each handler is the coordinator's method of the same name.
func init() {
	register(api{key: kmsg.JoinGroup, min: 0, max: 9,
		handle: handler(func(b *Broker, r *netio.Request, req *kmsg.JoinGroupRequest) *kmsg.JoinGroupResponse {
			return b.groups.JoinGroup(req, client(r))
		}),
		errorCodes: codes(func(r *kmsg.JoinGroupResponse, count func(int16)) { count(r.ErrorCode) }),
	})
	register(api{key: kmsg.SyncGroup, min: 0, max: 5,
		handle:     groups((*coordinator.Coordinator).SyncGroup),
		errorCodes: codes(func(r *kmsg.SyncGroupResponse, count func(int16)) { count(r.ErrorCode) }),
	})
	register(api{key: kmsg.Heartbeat, min: 0, max: 4,
		handle:     groups((*coordinator.Coordinator).Heartbeat),
		errorCodes: codes(func(r *kmsg.HeartbeatResponse, count func(int16)) { count(r.ErrorCode) }),
	})
	register(api{key: kmsg.LeaveGroup, min: 0, max: 5,
		handle: groups((*coordinator.Coordinator).LeaveGroup),
		errorCodes: codes(func(r *kmsg.LeaveGroupResponse, count func(int16)) {
			count(r.ErrorCode)
			for _, m := range r.Members {
				count(m.ErrorCode)
			}
		}),
	})
	register(api{key: kmsg.OffsetCommit, min: 0, max: 10,
		handle: groups((*coordinator.Coordinator).OffsetCommit),
		errorCodes: codes(func(r *kmsg.OffsetCommitResponse, count func(int16)) {
			for _, t := range r.Topics {
				for _, p := range t.Partitions {
					count(p.ErrorCode)
				}
			}
		}),
	})
	register(api{key: kmsg.OffsetFetch, min: 0, max: 10,
		handle: groups((*coordinator.Coordinator).OffsetFetch),
		errorCodes: codes(func(r *kmsg.OffsetFetchResponse, count func(int16)) {
			// v0-v7 answer one group at the top level, v8+ a list.
			count(r.ErrorCode)
			for _, t := range r.Topics {
				for _, p := range t.Partitions {
					count(p.ErrorCode)
				}
			}
			for _, g := range r.Groups {
				count(g.ErrorCode)
				for _, t := range g.Topics {
					for _, p := range t.Partitions {
						count(p.ErrorCode)
					}
				}
			}
		}),
	})
	register(api{key: kmsg.DescribeGroups, min: 0, max: 6,
		handle: groups((*coordinator.Coordinator).DescribeGroups),
		errorCodes: codes(func(r *kmsg.DescribeGroupsResponse, count func(int16)) {
			for _, g := range r.Groups {
				count(g.ErrorCode)
			}
		}),
	})
	register(api{key: kmsg.ListGroups, min: 0, max: 5,
		handle:     groups((*coordinator.Coordinator).ListGroups),
		errorCodes: codes(func(r *kmsg.ListGroupsResponse, count func(int16)) { count(r.ErrorCode) }),
	})
	register(api{key: kmsg.DeleteGroups, min: 0, max: 3,
		handle: groups((*coordinator.Coordinator).DeleteGroups),
		errorCodes: codes(func(r *kmsg.DeleteGroupsResponse, count func(int16)) {
			for _, g := range r.Groups {
				count(g.ErrorCode)
			}
		}),
	})
	register(api{key: kmsg.OffsetDelete, min: 0, max: 0,
		handle: groups((*coordinator.Coordinator).OffsetDelete),
		errorCodes: codes(func(r *kmsg.OffsetDeleteResponse, count func(int16)) {
			count(r.ErrorCode)
			for _, t := range r.Topics {
				for _, p := range t.Partitions {
					count(p.ErrorCode)
				}
			}
		}),
	})
	register(api{key: kmsg.ConsumerGroupHeartbeat, min: 0, max: 1,
		handle: handler(func(b *Broker, r *netio.Request, req *kmsg.ConsumerGroupHeartbeatRequest) *kmsg.ConsumerGroupHeartbeatResponse {
			return b.groups.ConsumerGroupHeartbeat(req, client(r))
		}),
		errorCodes: codes(func(r *kmsg.ConsumerGroupHeartbeatResponse, count func(int16)) { count(r.ErrorCode) }),
	})
	register(api{key: kmsg.ConsumerGroupDescribe, min: 0, max: 1,
		handle: groups((*coordinator.Coordinator).ConsumerGroupDescribe),
		errorCodes: codes(func(r *kmsg.ConsumerGroupDescribeResponse, count func(int16)) {
			for _, g := range r.Groups {
				count(g.ErrorCode)
			}
		}),
	})
}

// groups adapts a coordinator method that needs only the request.
func groups[Req kmsg.Request, Resp kmsg.Response](f func(c *coordinator.Coordinator, req Req) Resp) func(*Broker, context.Context, *netio.Request, kmsg.Request) kmsg.Response {
	return method(func(b *Broker, req Req) Resp { return f(b.groups, req) })
}
