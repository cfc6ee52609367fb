package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/caspaxos"
	"github.com/sluice-io/sluice/netio"
)

// AddRaftVoter (KIP-853, kafka-metadata-quorum add-controller) adds a
// controller to the quorum: VoterID with VoterDirectoryID, the
// incarnation its directory was formatted with (DescribeQuorum reports it
// as the ReplicaDirectoryID), reached at its endpoint on the controller
// listener among Listeners. Like Kafka's, it is forwarded to the active
// controller (on a connection of its own: quorum_membership_forward.go),
// which runs the change (quorum_membership.go) and answers once it is
// done.
func (b *Broker) handleAddRaftVoter(ctx context.Context, req *kmsg.AddRaftVoterRequest) *kmsg.AddRaftVoterResponse {
	resp := req.ResponseKind().(*kmsg.AddRaftVoterResponse)
	resp.ErrorCode, resp.ErrorMessage = membershipCode(b.addRaftVoter(ctx, req))
	return resp
}

func (b *Broker) addRaftVoter(ctx context.Context, req *kmsg.AddRaftVoterRequest) error {
	if b.ctrl == nil {
		return refuseChange(kerr.UnsupportedVersion, "this cluster's controller is not a quorum (controller.quorum.voters lists one voter)")
	}
	v := caspaxos.Voter{ID: req.VoterID, Incarnation: req.VoterDirectoryID}
	if v.ID < 0 || v.Incarnation == ([16]byte{}) {
		return refuseChange(kerr.InvalidRequest, "voter %d with directory id %x", req.VoterID, req.VoterDirectoryID)
	}
	name := b.cfg.ControllerListenerName()
	m := caspaxos.Member{Voter: v}
	for _, l := range req.Listeners {
		if l.Name == name && l.Host != "" && l.Port != 0 {
			m.Endpoints = []caspaxos.Endpoint{{Name: l.Name, Host: l.Host, Port: l.Port}}
		}
	}
	if len(m.Endpoints) == 0 {
		return refuseChange(kerr.InvalidRequest, "voter %d: no endpoint for the controller listener %q in %d listeners", v.ID, name, len(req.Listeners))
	}
	ctx, cancel := context.WithTimeout(ctx, membershipDeadline(req.TimeoutMillis))
	defer cancel()
	if err := b.ctrl.addVoter(ctx, req.ClusterID, m); err != nil {
		return fmt.Errorf("add voter %s: %w", v, err)
	}
	return nil
}

// membershipDeadline is a request's timeout, bounded by membershipTimeout
// (the default when it has none).
func membershipDeadline(ms int32) time.Duration {
	if d := time.Duration(ms) * time.Millisecond; d > 0 && d < membershipTimeout {
		return d
	}
	return membershipTimeout
}

func init() {
	// Not forward: forwarded on a connection of its own
	// (quorum_membership_forward.go).
	register(api{key: kmsg.AddRaftVoter, min: 0, max: 1, quorumOnly: true,
		handle: func(b *Broker, ctx context.Context, r *netio.Request, req kmsg.Request) kmsg.Response {
			areq := req.(*kmsg.AddRaftVoterRequest)
			return b.serveMembership(ctx, r, req, func(ctx context.Context) kmsg.Response {
				return b.handleAddRaftVoter(ctx, areq)
			}, func(code int16, msg string) kmsg.Response {
				resp := areq.ResponseKind().(*kmsg.AddRaftVoterResponse)
				resp.ErrorCode, resp.ErrorMessage = code, &msg
				return resp
			})
		},
		errorCodes: codes(func(r *kmsg.AddRaftVoterResponse, count func(int16)) { count(r.ErrorCode) }),
	})
}
