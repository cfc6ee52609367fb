package broker

import (
	"sync"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/controllerlink"
)

// quorumSource is the metadata source of a voter in a controller quorum.
// Its broker side follows the active controller through a Link, like a
// broker-only node (registration, heartbeats, forwarding, producer ids),
// wherever the active controller is, this node included. While this node
// is the active controller its handlers commit to the quorum role's Store
// directly (Commit, ctrlStore), and Image is then that Store's image, so a
// change decided here is seen here at once, as on a single controller.
//
// Every image is a committed prefix of the one metadata log, so the one
// with the higher offset holds the other: Image returns the newest it
// has seen from either and never goes back, also when the Store is
// dropped on a step-down and the Link has not caught up with it yet.
type quorumSource struct {
	*controllerlink.Link
	role *quorumRole

	mu     sync.Mutex
	newest *controller.Image
}

// Image is the newest committed metadata this node has: the active
// Store's or the Link's copy, whichever is further.
func (s *quorumSource) Image() *controller.Image {
	img := s.Link.Image()
	if st, _, ok := s.role.activeStore(); ok {
		if si := st.Image(); si.Offset() > img.Offset() {
			img = si
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.newest != nil && s.newest.Offset() > img.Offset() {
		return s.newest
	}
	s.newest = img
	return img
}

// Commit commits on the active controller's Store; elsewhere the change is
// the active controller's to make (the request is forwarded instead).
func (s *quorumSource) Commit(plan controller.Plan) (*controller.Image, error) {
	if st, _, ok := s.role.activeStore(); ok {
		return st.Commit(plan)
	}
	return nil, controllerlink.ErrNotController
}

// Close stops following, then stops the controller role.
func (s *quorumSource) Close() error {
	err := s.Link.Close()
	s.role.close()
	return err
}

// ctrlStore is the Store this node's controller commits to now: the
// single controller's (a single node, or the one voter of a cluster), or
// the quorum role's while this voter is the active controller with a live
// lease. False means this node is not the controller now: its controller
// APIs answer NOT_CONTROLLER.
func (b *Broker) ctrlStore() (*controller.Store, bool) {
	if b.ctrl != nil {
		st, _, ok := b.ctrl.activeStore()
		return st, ok
	}
	st, ok := b.meta.(*controller.Store)
	return st, ok
}

// isControllerNode reports whether this node runs a controller (it may
// not be the active one).
func (b *Broker) isControllerNode() bool {
	if b.ctrl != nil {
		return true
	}
	_, ok := b.meta.(*controller.Store)
	return ok
}

// metaForwarder is where requests only the controller decides go, when
// not to this node's own controller: a broker-only node's Link, or a
// quorum voter's Link while another voter is active.
func (b *Broker) metaForwarder() (forwarder, bool) {
	if b.ctrl != nil {
		if _, ok := b.ctrlStore(); ok {
			return nil, false
		}
	}
	fw, ok := b.meta.(forwarder)
	return fw, ok
}

// ctrlImage is the image the controller decides from: its Store's when
// this node is the controller, else this node's copy.
func (b *Broker) ctrlImage() *controller.Image {
	if b.ctrl != nil {
		// The role's last Store even if its lease just ran out: the
		// broker side may not be linked yet.
		if img := b.ctrl.lastImage(); img != nil {
			return img
		}
	}
	if st, ok := b.ctrlStore(); ok {
		return st.Image()
	}
	return b.metaImage()
}

// isActiveQuorumController reports whether this node is a quorum voter
// that is the active controller now.
func (b *Broker) isActiveQuorumController() bool {
	if b.ctrl == nil {
		return false
	}
	_, ok := b.ctrlStore()
	return ok
}
