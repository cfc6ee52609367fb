package voter

import (
	"context"
	"errors"
	"fmt"

	"github.com/sluice-io/sluice/ctrlquorum"
	"github.com/sluice-io/sluice/metalog"
)

// MetaLogRegister is the register as the metadata log's replica needs it
// (metarepl.Register): ISR changes go through the active controller's
// RequestISR, a compare-and-set on the register's epoch and configuration
// version; reads return the register as this voter last read or heard it.
//
// A read is not a full caspaxos round: the metadata log reads the register
// only to learn of a newer controller (liveness). Every decision it makes
// from what it reads is fenced by the epoch in its fetches and by the
// compare-and-set of its next ISR change, so a stale read costs a retry,
// never safety.
type MetaLogRegister struct{ v *Voter }

// MetaLogRegister returns v's register for the metadata log.
func (v *Voter) MetaLogRegister() MetaLogRegister { return MetaLogRegister{v} }

// ChangeISR asks for the metadata ISR change; the error is classified by
// metalog.RegisterError (ErrEpochChanged when this voter is no longer the
// active controller of change.Epoch).
func (r MetaLogRegister) ChangeISR(ctx context.Context, change metalog.ISRChange) (metalog.Config, error) {
	ch, err := r.v.RequestISR(ctrlquorum.ISRRequest{Epoch: change.Epoch, ConfigVersion: change.Version, ISR: change.ISR})
	if err != nil {
		if errors.Is(err, ctrlquorum.ErrNotActive) {
			// Deposed (or its lease ran out): the metadata log must
			// stop leading this epoch and read who leads now.
			return metalog.ConfigOf(r.v.Register()), fmt.Errorf("%w: voter: %w", metalog.ErrEpochChanged, err)
		}
		return metalog.Config{}, fmt.Errorf("voter: metadata ISR change: %w", err)
	}
	select {
	case res := <-ch:
		if res.Err != nil {
			if errors.Is(res.Err, ctrlquorum.ErrNotActive) {
				return metalog.ConfigOf(res.Register), fmt.Errorf("%w: voter: %w", metalog.ErrEpochChanged, res.Err)
			}
			return metalog.ConfigOf(res.Register), metalog.RegisterError(res.Err)
		}
		return metalog.ConfigOf(res.Register), nil
	case <-ctx.Done():
		return metalog.Config{}, fmt.Errorf("voter: metadata ISR change: %w", ctx.Err())
	case <-r.v.done:
		return metalog.Config{}, ErrClosed
	}
}

// Read returns the register as this voter last saw it, once it has seen
// one (a voter that never read the register has nothing to tell).
func (r MetaLogRegister) Read(ctx context.Context) (metalog.Config, error) {
	reg := r.v.Register()
	if reg.Epoch == 0 && reg.Active.IsZero() {
		return metalog.Config{}, errors.New("voter: the register was not read yet")
	}
	return metalog.ConfigOf(reg), ctx.Err()
}
