package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/caspaxos"
	"github.com/sluice-io/sluice/netio"
)

// RemoveRaftVoter (KIP-853, kafka-metadata-quorum remove-controller)
// removes a controller, VoterID with VoterDirectoryID (its incarnation),
// from the quorum: it leaves the metadata ISR, then the quorum. A voter
// that is down is removed too, as long as the voters left can carry the
// change (else REQUEST_TIMED_OUT). It is forwarded to the active
// controller (as AddRaftVoter), which does not remove itself
// (INVALID_REQUEST; see quorum_membership.go).
func (b *Broker) handleRemoveRaftVoter(ctx context.Context, req *kmsg.RemoveRaftVoterRequest) *kmsg.RemoveRaftVoterResponse {
	resp := req.ResponseKind().(*kmsg.RemoveRaftVoterResponse)
	resp.ErrorCode, resp.ErrorMessage = membershipCode(b.removeRaftVoter(ctx, req))
	return resp
}

func (b *Broker) removeRaftVoter(ctx context.Context, req *kmsg.RemoveRaftVoterRequest) error {
	if b.ctrl == nil {
		return refuseChange(kerr.UnsupportedVersion, "this cluster's controller is not a quorum (controller.quorum.voters lists one voter)")
	}
	v := caspaxos.Voter{ID: req.VoterID, Incarnation: req.VoterDirectoryID}
	if v.ID < 0 {
		return refuseChange(kerr.InvalidRequest, "voter id %d", req.VoterID)
	}
	ctx, cancel := context.WithTimeout(ctx, membershipTimeout)
	defer cancel()
	if err := b.ctrl.removeVoter(ctx, req.ClusterID, v); err != nil {
		return fmt.Errorf("remove voter %s: %w", v, err)
	}
	return nil
}

func init() {
	// Not forward: forwarded on a connection of its own
	// (quorum_membership_forward.go).
	register(api{key: kmsg.RemoveRaftVoter, min: 0, max: 0, quorumOnly: true,
		handle: func(b *Broker, ctx context.Context, r *netio.Request, req kmsg.Request) kmsg.Response {
			rreq := req.(*kmsg.RemoveRaftVoterRequest)
			return b.serveMembership(ctx, r, req, func(ctx context.Context) kmsg.Response {
				return b.handleRemoveRaftVoter(ctx, rreq)
			}, func(code int16, msg string) kmsg.Response {
				resp := rreq.ResponseKind().(*kmsg.RemoveRaftVoterResponse)
				resp.ErrorCode, resp.ErrorMessage = code, &msg
				return resp
			})
		},
		errorCodes: codes(func(r *kmsg.RemoveRaftVoterResponse, count func(int16)) { count(r.ErrorCode) }),
	})
}
