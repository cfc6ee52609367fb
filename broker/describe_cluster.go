package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// endpointTypeBroker is DescribeCluster's endpoint type for brokers (v1+);
// controllers are type 2 and have no separate listener here.
const endpointTypeBroker = 1

func (b *Broker) handleDescribeCluster(req *kmsg.DescribeClusterRequest) *kmsg.DescribeClusterResponse {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	img := b.metaImage()
	resp.ClusterID = img.ClusterID()
	resp.ControllerID = b.controllerID(img)
	resp.ClusterAuthorizedOperations = authorizedOperationsOmitted
	if req.Version >= 1 {
		resp.EndpointType = req.EndpointType
		if req.EndpointType != endpointTypeBroker {
			resp.ErrorCode = kerr.UnsupportedEndpointType.Code
			return resp
		}
	}
	for _, mb := range b.metadataBrokers(img) {
		db := kmsg.NewDescribeClusterResponseBroker()
		db.NodeID, db.Host, db.Port, db.Rack = mb.NodeID, mb.Host, mb.Port, mb.Rack
		resp.Brokers = append(resp.Brokers, db)
	}
	return resp
}

func init() {
	register(api{key: kmsg.DescribeCluster, min: 0, max: 2,
		handle: method((*Broker).handleDescribeCluster),
		errorCodes: codes(func(r *kmsg.DescribeClusterResponse, count func(int16)) {
			count(r.ErrorCode)
		}),
	})
}
