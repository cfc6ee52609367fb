package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/coordinator"
	"github.com/sluice-io/sluice/netio"
)

// Handle implements netio.Handler: decode, route to the API's handler,
// encode. A request that cannot be decoded closes the connection, as Kafka
// does: after a framing or schema error nothing later on the wire can be
// trusted.
func (b *Broker) Handle(ctx context.Context, r *netio.Request) *netio.Response {
	if r.Key == kmsg.ApiVersions.Int16() && !isSupported(r.Key, r.Version) {
		// KIP-511: answer a too-new ApiVersions with v0 and our table, so the
		// client can retry with a version we know.
		return encode(b.apiVersionsUnsupported())
	}
	if !isSupported(r.Key, r.Version) {
		b.logger.Warn("unsupported request; closing connection", "api_key", r.Key, "api_version", r.Version, "client_id", strOrEmpty(r.ClientID), "remote", addr(r.Conn))
		return &netio.Response{CloseAfter: true}
	}
	b.metrics.inFlight.Add(1)
	defer b.metrics.inFlight.Add(-1)
	req := kmsg.RequestForKey(r.Key)
	req.SetVersion(r.Version)
	if err := req.ReadFrom(r.Body); err != nil {
		b.logger.Warn("malformed request; closing connection", "api_key", r.Key, "api_version", r.Version, "client_id", strOrEmpty(r.ClientID), "remote", addr(r.Conn), "err", err)
		return &netio.Response{CloseAfter: true}
	}

	var resp kmsg.Response
	switch req := req.(type) {
	case *kmsg.ApiVersionsRequest:
		resp = b.handleApiVersions(req)
	case *kmsg.MetadataRequest:
		resp = b.handleMetadata(req)
	case *kmsg.ProduceRequest:
		pr := b.handleProduce(req)
		if req.Acks == 0 {
			b.metrics.countErrors(r.Key, pr)
			// acks=0: the client waits for nothing, so a failure can only be
			// signalled by closing the connection, as Kafka does.
			if produceFailed(pr) {
				return &netio.Response{CloseAfter: true}
			}
			return nil
		}
		resp = pr
	case *kmsg.FetchRequest:
		return b.handleFetch(ctx, req)
	case *kmsg.ListOffsetsRequest:
		resp = b.handleListOffsets(req)
	case *kmsg.CreateTopicsRequest:
		resp = b.handleCreateTopics(req)
	case *kmsg.DeleteTopicsRequest:
		resp = b.handleDeleteTopics(req)
	case *kmsg.CreatePartitionsRequest:
		resp = b.handleCreatePartitions(req)
	case *kmsg.DeleteRecordsRequest:
		resp = b.handleDeleteRecords(req)
	case *kmsg.InitProducerIDRequest:
		resp = b.handleInitProducerID(req)
	case *kmsg.OffsetForLeaderEpochRequest:
		resp = b.handleOffsetForLeaderEpoch(req)
	case *kmsg.DescribeConfigsRequest:
		resp = b.handleDescribeConfigs(req)
	case *kmsg.AlterConfigsRequest:
		resp = b.handleAlterConfigs(req)
	case *kmsg.IncrementalAlterConfigsRequest:
		resp = b.handleIncrementalAlterConfigs(req)
	case *kmsg.DescribeClusterRequest:
		resp = b.handleDescribeCluster(req)
	case *kmsg.FindCoordinatorRequest:
		resp = b.handleFindCoordinator(req)
	case *kmsg.JoinGroupRequest:
		resp = b.groups.JoinGroup(req, client(r))
	case *kmsg.SyncGroupRequest:
		resp = b.groups.SyncGroup(req)
	case *kmsg.HeartbeatRequest:
		resp = b.groups.Heartbeat(req)
	case *kmsg.LeaveGroupRequest:
		resp = b.groups.LeaveGroup(req)
	case *kmsg.OffsetCommitRequest:
		resp = b.groups.OffsetCommit(req)
	case *kmsg.OffsetFetchRequest:
		resp = b.groups.OffsetFetch(req)
	case *kmsg.DescribeGroupsRequest:
		resp = b.groups.DescribeGroups(req)
	case *kmsg.ListGroupsRequest:
		resp = b.groups.ListGroups(req)
	case *kmsg.DeleteGroupsRequest:
		resp = b.groups.DeleteGroups(req)
	case *kmsg.OffsetDeleteRequest:
		resp = b.groups.OffsetDelete(req)
	case *kmsg.ConsumerGroupHeartbeatRequest:
		resp = b.groups.ConsumerGroupHeartbeat(req, client(r))
	case *kmsg.ConsumerGroupDescribeRequest:
		resp = b.groups.ConsumerGroupDescribe(req)
	default:
		// Unreachable while versions.go and this switch agree; a test
		// checks that they do.
		b.logger.Error("supported API without a handler", "api_key", r.Key)
		return &netio.Response{CloseAfter: true}
	}
	resp.SetVersion(r.Version)
	b.metrics.countErrors(r.Key, resp)
	return encode(resp)
}

func encode(resp kmsg.Response) *netio.Response {
	out := &netio.Response{}
	out.AppendBytes(resp.AppendTo(nil))
	return out
}

// client identifies a request's sender to the group coordinator.
func client(r *netio.Request) coordinator.Client {
	return coordinator.Client{ID: strOrEmpty(r.ClientID), Host: clientHost(addr(r.Conn))}
}

func strOrEmpty(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func addr(c netio.ConnInfo) string {
	if c.Remote == nil {
		return ""
	}
	return c.Remote.String()
}

// Codes handlers use directly, when the condition is the protocol's own and
// not an error from a layer below.
var (
	codeUnknownTopicOrPartition = kerr.UnknownTopicOrPartition.Code
	codeUnknownTopicID          = kerr.UnknownTopicID.Code
)

func produceFailed(resp *kmsg.ProduceResponse) bool {
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 {
				return true
			}
		}
	}
	return false
}
