package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// countErrors counts the error codes of a response for
// sluice_request_errors_total: the request-level code, and for the APIs
// that answer per partition or per topic, each of those. Fetch is counted
// where its response is built (finishFetch), since it is not a kmsg value.
func (m *metrics) countErrors(key int16, resp kmsg.Response) {
	switch r := resp.(type) {
	case *kmsg.ProduceResponse:
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				m.requestError(key, p.ErrorCode)
			}
		}
	case *kmsg.MetadataResponse:
		for _, t := range r.Topics {
			m.requestError(key, t.ErrorCode)
		}
	case *kmsg.ListOffsetsResponse:
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				m.requestError(key, p.ErrorCode)
			}
		}
	case *kmsg.CreateTopicsResponse:
		for _, t := range r.Topics {
			m.requestError(key, t.ErrorCode)
		}
	case *kmsg.DeleteTopicsResponse:
		for _, t := range r.Topics {
			m.requestError(key, t.ErrorCode)
		}
	case *kmsg.OffsetCommitResponse:
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				m.requestError(key, p.ErrorCode)
			}
		}
	case *kmsg.OffsetFetchResponse:
		m.requestError(key, r.ErrorCode)
		for _, g := range r.Groups {
			m.requestError(key, g.ErrorCode)
		}
	case *kmsg.FindCoordinatorResponse:
		m.requestError(key, r.ErrorCode)
		for _, c := range r.Coordinators {
			m.requestError(key, c.ErrorCode)
		}
	case *kmsg.JoinGroupResponse:
		m.requestError(key, r.ErrorCode)
	case *kmsg.SyncGroupResponse:
		m.requestError(key, r.ErrorCode)
	case *kmsg.HeartbeatResponse:
		m.requestError(key, r.ErrorCode)
	case *kmsg.LeaveGroupResponse:
		m.requestError(key, r.ErrorCode)
	case *kmsg.ConsumerGroupHeartbeatResponse:
		m.requestError(key, r.ErrorCode)
	case *kmsg.InitProducerIDResponse:
		m.requestError(key, r.ErrorCode)
	case *kmsg.DescribeGroupsResponse:
		for _, g := range r.Groups {
			m.requestError(key, g.ErrorCode)
		}
	case *kmsg.DeleteGroupsResponse:
		for _, g := range r.Groups {
			m.requestError(key, g.ErrorCode)
		}
	case *kmsg.CreatePartitionsResponse:
		for _, t := range r.Topics {
			m.requestError(key, t.ErrorCode)
		}
	case *kmsg.DeleteRecordsResponse:
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				m.requestError(key, p.ErrorCode)
			}
		}
	}
}
