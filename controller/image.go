package controller

import "slices"

// Image is a read-only snapshot of the cluster metadata: what a request
// handler reads leaders, replicas, ISR, epochs and brokers from. The Store
// publishes a new Image after every batch of records it applies; a handler
// takes one at the start of a request and reads a consistent view from it
// however the metadata changes meanwhile.
//
// Nothing reachable from an Image may be modified: the Topics, Partitions
// and Brokers it returns are shared with every other reader.
type Image struct {
	st *State
	// offset is the log offset of the next record: the image holds every
	// record before it.
	offset int64
	// controller is the node whose decisions the image holds. With no
	// controller quorum it is the node that owns the Store.
	controller int32
	brokers    []*Broker // by id
}

func newImage(st *State, offset int64, controller int32) *Image {
	img := &Image{st: st, offset: offset, controller: controller}
	for _, id := range st.BrokerIDs() {
		img.brokers = append(img.brokers, st.Brokers[id])
	}
	return img
}

// ClusterID is the cluster's id.
func (img *Image) ClusterID() string { return img.st.ClusterID }

// ControllerID is the node that decides metadata changes.
func (img *Image) ControllerID() int32 { return img.controller }

// Offset is the metadata-log offset the image is at: it holds every record
// before it.
func (img *Image) Offset() int64 { return img.offset }

// Brokers returns the registered brokers in ascending id order.
func (img *Image) Brokers() []*Broker { return img.brokers }

// Broker returns one registered broker.
func (img *Image) Broker(id int32) (*Broker, bool) {
	b, ok := img.st.Brokers[id]
	return b, ok
}

// Topic returns a topic by name.
func (img *Image) Topic(name string) (*Topic, bool) {
	t, ok := img.st.Topics[name]
	return t, ok
}

// TopicByID returns a topic by id.
func (img *Image) TopicByID(id TopicID) (*Topic, bool) {
	t, ok := img.st.byID[id]
	return t, ok
}

// Partition returns one partition of a topic.
func (img *Image) Partition(topic string, p int32) (Partition, bool) {
	t, ok := img.st.Topics[topic]
	if !ok || p < 0 || int(p) >= len(t.Partitions) {
		return Partition{}, false
	}
	return t.Partitions[p], true
}

// TopicNames returns the topic names in sorted order.
func (img *Image) TopicNames() []string { return img.st.TopicNames() }

// PartitionCount is the number of partitions of all topics together.
func (img *Image) PartitionCount() int64 { return img.st.PartitionCount() }

// Plan runs plan against the image without committing what it returns:
// a request's validate-only mode. plan must not change the State.
func (img *Image) Plan(plan Plan) ([]Record, error) { return plan(img.st) }

// Endpoint returns the endpoint of broker id on the named listener, or its
// first one when it has none of that name.
func (b *Broker) Endpoint(listener string) (Endpoint, bool) {
	if i := slices.IndexFunc(b.Endpoints, func(e Endpoint) bool { return e.Name == listener }); i >= 0 {
		return b.Endpoints[i], true
	}
	if len(b.Endpoints) > 0 {
		return b.Endpoints[0], true
	}
	return Endpoint{}, false
}

// LiveBrokerCount is the number of unfenced brokers (State.LiveBrokerCount).
func (img *Image) LiveBrokerCount() int { return img.st.LiveBrokerCount() }

// RegisteredBrokerCount is the number of registered brokers, fenced or not
// (State.RegisteredBrokerCount).
func (img *Image) RegisteredBrokerCount() int { return img.st.RegisteredBrokerCount() }

// ListPartitionReassignments returns the reassignments in progress among
// parts, nil for all (State.ListPartitionReassignments).
func (img *Image) ListPartitionReassignments(parts []TopicPartition) []OngoingReassignment {
	return img.st.ListPartitionReassignments(parts)
}
