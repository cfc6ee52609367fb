package quorumnet

import (
	"errors"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/testkit"
)

// A voter added by a membership change is unknown until AddPeer, then
// reached like a configured one; its address cannot change under it.
func TestAddPeerReachesANewVoter(t *testing.T) {
	got := make(chan Request, 100)
	f := startFake(t, "127.0.0.1:0", echo(got))
	c := newClient(t, Config{NodeID: 5, Peers: map[int32]string{5: "self:1"}})
	if _, err := fetch(c, 4, 1, time.Second); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("fetch from a peer not added yet: %v, want ErrUnknownPeer", err)
	}
	if c.Reachable(4) {
		t.Fatal("a peer not added yet is reachable")
	}
	if err := c.AddPeer(4, f.addr); err != nil {
		t.Fatal(err)
	}
	if err := c.AddPeer(4, f.addr); err != nil {
		t.Fatalf("adding a known peer again: %v", err)
	}
	if err := c.AddPeer(4, "127.0.0.1:1"); !errors.Is(err, ErrPeerMoved) {
		t.Fatalf("adding a known peer at another address: %v, want ErrPeerMoved", err)
	}
	testkit.Eventually(t, 5*time.Second, "the added peer to be reachable", func() bool { return c.Reachable(4) })
	c.Send(4, []byte("step"))
	select {
	case r := <-got:
		if r.From != 5 || string(r.Payload) != "step" {
			t.Fatalf("got %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("an envelope to the added peer never arrived")
	}
	if resp, err := fetch(c, 4, 7, 5*time.Second); err != nil || resp.HighWatermark != 7 {
		t.Fatalf("fetch from the added peer: %+v, %v", resp, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.AddPeer(6, f.addr); !errors.Is(err, ErrClosed) {
		t.Fatalf("AddPeer after Close: %v, want ErrClosed", err)
	}
}
