package metarepl

import (
	"context"

	"github.com/sluice-io/sluice/metalog"
)

// ApplyRegister hands the leader a register value read in its epoch, as a
// register poll would: a newer configuration version replaces the voters
// and the ISR it tracks (a membership change finished by the voter: a new
// voter's fetches count from then on and it may enter the ISR once caught
// up; a removed one is no longer tracked). An older epoch or version is
// ignored, a newer epoch deposes the leader, and a follower or an idle
// replica follows a newer active controller. It returns once the loop
// has applied it.
func (r *Replica) ApplyRegister(ctx context.Context, c metalog.Config) error {
	return r.call(ctx, func() error {
		r.onRegister(c)
		return nil
	})
}
