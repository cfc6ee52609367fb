package metalog

import (
	"errors"
	"fmt"

	"github.com/sluice-io/sluice/caspaxos"
)

// ConfigOf is the part of a register value the metadata log follows.
func ConfigOf(r caspaxos.Register) Config {
	c := Config{Epoch: r.Epoch, Version: r.ConfigVersion, Active: r.Active, ISR: append([]Voter(nil), r.ISR...)}
	for _, m := range r.Voters {
		c.Voters = append(c.Voters, m.Voter)
	}
	return c
}

// RegisterError classifies the error of a register compare-and-set
// (caspaxos.ShrinkISR or ExpandISR) for ISRResult: another epoch is
// ErrEpochChanged, another configuration version ErrVersionChanged, a
// change the register judged invalid (below the metadata min ISR, not a
// voter) ErrRefused; anything else (a timeout, caspaxos.ErrIndeterminate)
// is returned as it is, and retried.
func RegisterError(err error) error {
	var (
		epoch   *caspaxos.EpochError
		version *caspaxos.ConfigVersionError
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &epoch):
		return fmt.Errorf("%w: %w", ErrEpochChanged, err)
	case errors.As(err, &version):
		return fmt.Errorf("%w: %w", ErrVersionChanged, err)
	case errors.Is(err, caspaxos.ErrBelowMinISR), errors.Is(err, caspaxos.ErrBadConfig):
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return err
}
