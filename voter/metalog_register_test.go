package voter

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sluice-io/sluice/caspaxos"
	"github.com/sluice-io/sluice/metalog"
)

// The metadata log's register: the active controller shrinks and expands
// the metadata ISR by compare-and-set; a stale configuration version is
// ErrVersionChanged, a voter that is not active ErrEpochChanged, a shrink
// below MetaMinISR ErrRefused; reads return what the voter last saw.
func TestMetaLogRegister(t *testing.T) {
	c := newCluster(t)
	id, epoch := c.waitActive(5*time.Second, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	active := c.voters[id].MetaLogRegister()
	cfg, err := active.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Epoch != epoch || cfg.Active != c.voters[id].Self() || len(cfg.ISR) != 3 {
		t.Fatalf("read %+v; want epoch %d, active %v, 3 in the ISR", cfg, epoch, c.voters[id].Self())
	}
	var out caspaxos.Voter
	var isr []caspaxos.Voter
	for _, m := range c.members {
		if m.Voter.ID != id && out.IsZero() {
			out = m.Voter
			continue
		}
		isr = append(isr, m.Voter)
	}
	shrunk, err := changeISR(ctx, active, metalog.ISRChange{Epoch: epoch, Version: cfg.Version, ISR: isr})
	if err != nil {
		t.Fatalf("shrink to %v: %v", isr, err)
	}
	if len(shrunk.ISR) != 2 || shrunk.Version != cfg.Version+1 {
		t.Fatalf("after the shrink: %+v; want 2 in the ISR, version %d", shrunk, cfg.Version+1)
	}
	stale := []caspaxos.Voter{c.voters[id].Self(), out}
	if _, err := active.ChangeISR(ctx, metalog.ISRChange{Epoch: epoch, Version: cfg.Version, ISR: stale}); !errors.Is(err, metalog.ErrVersionChanged) {
		t.Fatalf("a change from a stale version: %v; want ErrVersionChanged", err)
	}
	if _, err := active.ChangeISR(ctx, metalog.ISRChange{Epoch: epoch, Version: shrunk.Version, ISR: isr[:1]}); !errors.Is(err, metalog.ErrRefused) {
		t.Fatalf("a shrink below the min ISR: %v; want ErrRefused", err)
	}
	grown, err := changeISR(ctx, active, metalog.ISRChange{Epoch: epoch, Version: shrunk.Version, ISR: append(append([]caspaxos.Voter(nil), isr...), out), Expand: true})
	if err != nil || len(grown.ISR) != 3 {
		t.Fatalf("expand back: %+v, %v", grown, err)
	}
	other := c.voters[out.ID].MetaLogRegister()
	if _, err := other.ChangeISR(ctx, metalog.ISRChange{Epoch: epoch, Version: grown.Version, ISR: isr}); !errors.Is(err, metalog.ErrEpochChanged) {
		t.Fatalf("an ISR change from a voter that is not active: %v; want ErrEpochChanged", err)
	}
}

// changeISR retries a change whose outcome was indeterminate (a renewal
// raced it) until it is known: applied (the register holds its ISR at its
// version + 1) or refused.
func changeISR(ctx context.Context, r MetaLogRegister, ch metalog.ISRChange) (metalog.Config, error) {
	for {
		cfg, err := r.ChangeISR(ctx, ch)
		if !errors.Is(err, caspaxos.ErrIndeterminate) {
			return cfg, err
		}
		time.Sleep(50 * time.Millisecond)
		if now := metalog.ConfigOf(r.v.Register()); now.Version == ch.Version+1 && len(now.ISR) == len(ch.ISR) {
			return now, nil
		}
	}
}
