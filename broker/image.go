package broker

import (
	"context"
	"net"

	"github.com/sluice-io/sluice/controller"
)

// The broker reads the cluster from the metadata image: which brokers
// exist and where they listen, each partition's leader, replicas, ISR and
// epochs. A handler takes the image once (b.metaImage()) and answers from it;
// only this file knows which broker this node is, to register it and to
// find its own replicas among a partition's.

// MetadataSource is where a broker's cluster metadata comes from (Deps.Metadata).
// A single node's is its local controller.Store; a broker in a cluster
// follows the controller's metadata log. Handlers see only this: they read
// the Image and ask for changes with Commit, so where the metadata lives
// and who decides a change is the source's business.
type MetadataSource interface {
	// ClusterID names the cluster the log dirs must belong to.
	ClusterID() string
	// Image is the newest committed metadata, read-only.
	Image() *controller.Image
	// Commit runs plan against the current state and, when it returns
	// records, makes them durable and returns the image that includes
	// them.
	Commit(plan controller.Plan) (*controller.Image, error)
	// NextProducerID reserves a producer id (InitProducerId).
	NextProducerID() (int64, error)
	// Close releases the source; the broker calls it on Shutdown.
	Close() error
}

var _ MetadataSource = (*controller.Store)(nil)

// metaImage is the current metadata image.
func (b *Broker) metaImage() *controller.Image { return b.meta.Image() }

// localID is this node's broker id. It names this node's own replica
// (whose local log may be offline); who leads and who replicates a
// partition always comes from the image.
func (b *Broker) localID() int32 { return b.cfg.NodeID }

// registration is what this node registers: its id and its advertised
// listeners, with the bound port for one asked as port 0 (tests).
func (b *Broker) registration() controller.Broker {
	reg := controller.Broker{ID: b.cfg.NodeID}
	if b.cfg.BrokerRack != "" {
		rack := b.cfg.BrokerRack
		reg.Rack = &rack
	}
	for i, l := range b.cfg.AdvertisedListeners {
		port := int32(l.Port)
		if l.Port == 0 && i == 0 && b.listener != nil {
			port = int32(b.listener.Addr().(*net.TCPAddr).Port)
		}
		reg.Endpoints = append(reg.Endpoints, controller.Endpoint{Name: l.Name, Host: l.Host, Port: port})
	}
	return reg
}

// registerSelf registers this node in the metadata as it starts, which
// also starts a new leader epoch on every partition it leads
// (controller.State.PlanBrokerStart).
func (b *Broker) registerSelf() error {
	reg := b.registration()
	if r, ok := b.meta.(registrar); ok {
		// The controller is elsewhere: it registers this node, and the
		// registration is in this node's copy when Register returns.
		ctx, cancel := context.WithTimeout(context.Background(), registerTimeout)
		defer cancel()
		_, err := r.Register(ctx, reg, b.incarnation)
		return err
	}
	_, err := b.meta.Commit(func(s *controller.State) ([]controller.Record, error) {
		return s.PlanBrokerStart(reg), nil
	})
	return err
}

// endpoint is where clients reach broker id: its endpoint on the listener
// this broker advertises first (the one clients came in on), as the
// image records it.
func (b *Broker) endpoint(img *controller.Image, id int32) (controller.Endpoint, bool) {
	br, ok := img.Broker(id)
	if !ok {
		return controller.Endpoint{}, false
	}
	if len(b.cfg.AdvertisedListeners) == 0 {
		// A controller-only voter has no broker listener of its own:
		// it names each broker by the first listener it registered.
		if len(br.Endpoints) == 0 {
			return controller.Endpoint{}, false
		}
		return br.Endpoints[0], true
	}
	return br.Endpoint(b.cfg.AdvertisedListeners[0].Name)
}
