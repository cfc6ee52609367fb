package caspaxos_test

import (
	"fmt"

	"github.com/sluice-io/sluice/caspaxos"
)

// Example shows the caller's loop: acceptors persist before replying, the
// proposer's messages are routed by Acceptor and Proposer, and a change's
// Result comes back in Output.Done. Here the network is a slice and the
// disk a map; the controller uses its listener and fsync.
func Example() {
	voters := []caspaxos.Voter{{ID: 1}, {ID: 2}, {ID: 3}}
	for i := range voters {
		voters[i].Incarnation[0] = byte(i + 1) // in life: a random id made when the disk is formatted
	}
	disk := map[int32]caspaxos.AcceptorState{}
	acceptors := map[int32]*caspaxos.Acceptor{}
	for _, v := range voters {
		acceptors[v.ID], _ = caspaxos.NewAcceptor(caspaxos.AcceptorState{Self: v})
	}
	p, _ := caspaxos.NewProposer(caspaxos.Options{ID: 1, Config: caspaxos.Majority(voters), OneRoundTrip: true})

	run := func(out caspaxos.Output) *caspaxos.Result {
		queue := out.Messages
		for len(queue) > 0 {
			m := queue[0]
			queue = queue[1:]
			switch m.Type {
			case caspaxos.MsgPrepare, caspaxos.MsgAccept:
				rd := acceptors[m.Acceptor.ID].Step(m)
				if rd.Persist != nil {
					disk[m.Acceptor.ID] = *rd.Persist // fsync here, then send
				}
				queue = append(queue, rd.Messages...)
			default:
				o := p.Step(m)
				queue = append(queue, o.Messages...)
				if o.Done != nil {
					return o.Done
				}
			}
		}
		return nil // in life: Tick until a retry gets through
	}

	me := voters[0]
	out, _ := p.Propose(caspaxos.Takeover(0, 0, me))
	res := run(out)
	var r caspaxos.Register
	_ = r.UnmarshalBinary(res.Value)
	fmt.Printf("epoch %d, active %d, ISR %d voter(s), lease %d\n", r.Epoch, r.Active.ID, len(r.ISR), r.Lease)

	out, _ = p.Propose(caspaxos.Renew(r.Epoch, me, r.Lease))
	fmt.Printf("renewal skips the prepare: %v\n", out.Messages[0].Type == caspaxos.MsgAccept)
	res = run(out)
	_ = r.UnmarshalBinary(res.Value)
	fmt.Printf("epoch %d, lease %d\n", r.Epoch, r.Lease)

	// A stale controller's compare-and-set is refused with the epoch it missed.
	out, _ = p.Propose(caspaxos.SetISR(0, []caspaxos.Voter{me}))
	fmt.Println(run(out).Err)
	// Output:
	// epoch 1, active 1, ISR 1 voter(s), lease 0
	// renewal skips the prepare: true
	// epoch 1, lease 1
	// caspaxos: register epoch is 1 (active 1/01000000), expected 0
}
