package metarepl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var chaosSeed = flag.Uint64("chaos-seed", 0, "seed of TestReplicaChaos (0: a few fixed ones)")

// TestReplicaChaos runs appenders against three voters and an observer
// while the network loses 5% of the messages and it cuts links, crashes and restarts voters (MemFS: what was not
// fsynced is lost) and moves the leadership to a random ISR voter, as
// package voter would. Goroutines make the interleavings vary from run to
// run; the seed fixes the schedule of faults. One appender uses Append,
// two AppendAt at the log end and epoch the leader last showed, one of
// which makes every fourth batch a checkpoint (StartCheckpointAt); with a
// low TrimMinBytes every node trims its log to them as they commit, and a
// node cut off or crashed past a trim starts over at the leader's start.
// It checks that every acknowledged append at an offset at or past a
// log's start is in that log at its offset, that a log's start is always
// a checkpoint batch's offset, that no refused AppendAt is in any node's
// log, that all nodes' committed batches agree wherever two hold an offset
// and every voter's log is the leader's from where both start once
// healed, and that no restarted node's high watermark went back.
func TestReplicaChaos(t *testing.T) {
	seeds := []uint64{1, 2, 3}
	if *chaosSeed != 0 {
		seeds = []uint64{*chaosSeed}
	}
	var truncations, startOvers int
	for _, seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			events := runChaos(t, seed)
			truncations += events["metadata log truncates"]
			startOvers += events["metadata log starts over at the leader's log start"]
		})
	}
	// Counted over the seeds: a divergent tail past a trimmed leader's
	// start is dropped by starting over, not truncated, so one seed may
	// see only one of the two.
	if *chaosSeed == 0 && (truncations == 0 || startOvers == 0) {
		t.Errorf("%d truncations of a divergent tail, %d start-overs at the leader's start: the faults are too weak",
			truncations, startOvers)
	}
}

// runChaos runs one seed and returns the counts of the replicas' log
// messages.
func runChaos(t *testing.T, seed uint64) map[string]int {
	rng := rand.New(rand.NewPCG(seed, 17))
	c := newCluster(t, 100, 2)
	events := &countingHandler{counts: map[string]int{}}
	for id := int32(1); id <= observerID; id++ {
		c.nodes[id].Close()
		c.logs[id].Close()
		cfg := c.cfgs[id]
		cfg.Logger = slog.New(events)
		cfg.TrimMinBytes, cfg.TrimDelay = 1024, -1 // trim at once: more fetchers start over
		c.cfgs[id] = cfg
		c.startNode(id)
	}
	c.net.SetLoss(0.05, seed)
	cfg := c.elect(1, 2, 3, observerID)
	var leader atomic.Int32
	leader.Store(1)
	epoch := cfg.Epoch

	var (
		mu    sync.Mutex
		acked = map[int64]string{}
		// refused holds the AppendAt values refused: no log may hold one.
		refused = map[string]bool{}
		ackedAt int
		stop    = make(chan struct{})
		wg      sync.WaitGroup
		seq     atomic.Int64
	)
	for a := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				v := fmt.Sprintf("w%d-%d", a, seq.Add(1))
				ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				r := c.node(leader.Load())
				var off int64
				var err error
				switch n := seq.Load(); {
				case a == 0:
					off, err = r.Append(ctx, [][]byte{[]byte(v)})
				case a == 2 && n%4 == 0:
					// A checkpoint, with AppendAt's checks.
					v = "ck-" + v
					st := r.Status()
					off = st.LogEndOffset
					var wait func(context.Context) error
					if wait, err = r.StartCheckpointAt(ctx, st.Epoch, off, [][]byte{[]byte(v)}); err == nil {
						err = wait(ctx)
					}
				default:
					// At the end and in the epoch the node last showed:
					// refused when another append or a takeover came first.
					st := r.Status()
					off = st.LogEndOffset
					err = r.AppendAt(ctx, st.Epoch, off, [][]byte{[]byte(v)})
				}
				cancel()
				mu.Lock()
				switch {
				case err == nil:
					acked[off] = v
					if a > 0 {
						ackedAt++
					}
				case errors.Is(err, ErrEpochChanged) || errors.Is(err, ErrOffsetMismatch):
					refused[v] = true
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(5 * time.Millisecond)
				}
			}
		}()
	}

	moveLeader := func() {
		isr := c.reg.value().ISR
		next := isr[rng.IntN(len(isr))].ID
		cfg := c.elect(next)
		epoch = cfg.Epoch
		leader.Store(next)
		for id := int32(1); id <= observerID; id++ {
			if id != next {
				if err := c.node(id).Follow(c.ctx(), voterOf(next), epoch); err != nil {
					t.Fatalf("node %d follows %d in %d: %v", id, next, epoch, err)
				}
			}
		}
	}
	for step := range 25 {
		time.Sleep(time.Duration(20+rng.IntN(60)) * time.Millisecond)
		switch k := rng.IntN(10); {
		case k < 3:
			c.net.Isolate(int32(1 + rng.IntN(3)))
		case k < 5:
			c.net.HealAll()
		case k < 7:
			id := int32(1 + rng.IntN(3))
			hw := c.crash(id)
			c.startNode(id)
			if got := c.logs[id].HighWatermark(); got < hw {
				t.Fatalf("step %d: node %d's high watermark went back across a crash: %d, was %d", step, id, got, hw)
			}
			checkStart(t, id, c.logs[id])
			if id == leader.Load() {
				moveLeader()
			} else if err := c.node(id).Follow(c.ctx(), voterOf(leader.Load()), epoch); err != nil {
				t.Fatal(err)
			}
		default:
			moveLeader()
		}
	}
	c.net.HealAll()
	c.net.SetLoss(0, 0)
	close(stop)
	wg.Wait()
	// Healed, everything converges: one more commit reaches every node.
	l := leader.Load()
	final := c.append(l, "final")
	mu.Lock()
	acked[final] = "final"
	mu.Unlock()
	c.waitFor("every node at the leader's high watermark", func() bool {
		for id := int32(1); id <= observerID; id++ {
			if c.node(id).Status().HighWatermark != final+1 {
				return false
			}
		}
		return true
	})
	c.checkPrefixes(nil)
	all := readLog(t, c.logs[l])
	for id := int32(1); id <= observerID; id++ {
		checkStart(t, id, c.logs[id])
		bs := readLog(t, c.logs[id])
		byOffset := map[int64]string{}
		for _, b := range bs {
			byOffset[b.Offset] = string(b.Records[0])
		}
		start := c.logs[id].StartOffset()
		for off, v := range acked {
			if off >= start && byOffset[off] != v {
				t.Fatalf("acknowledged %q at %d; node %d's log (from %d) has %q there", v, off, id, start, byOffset[off])
			}
		}
		if id == observerID {
			continue
		}
		from := max(start, c.logs[l].StartOffset())
		if got, want := describe(suffix(bs, from)), describe(suffix(all, from)); !slices.Equal(got, want) || len(got) == 0 {
			t.Fatalf("voter %d's log from %d differs from the leader's:\n%v\n%v", id, from, got, want)
		}
	}
	for id := int32(1); id <= observerID; id++ {
		for _, b := range readLog(t, c.logs[id]) {
			if refused[string(b.Records[0])] {
				t.Fatalf("node %d's log holds %s, an AppendAt that was refused", id, describe([]Batch{b}))
			}
		}
	}
	if ackedAt == 0 {
		t.Errorf("seed %d: no AppendAt acknowledged", seed)
	}
	t.Logf("seed %d: %d acknowledged appends (%d AppendAt), %d AppendAt refused, final epoch %d, log end %d, events %v",
		seed, len(acked), ackedAt, len(refused), epoch, final+1, events.snapshot())
	if *chaosSeed == 0 && events.count("metadata log trimmed") == 0 {
		t.Errorf("seed %d: no node ever trimmed its log", seed)
	}
	return events.snapshot()
}

// checkStart asserts a log that starts past 0 starts with a checkpoint
// batch, or is empty (reset, the checkpoint not fetched yet).
func checkStart(t *testing.T, id int32, l *Log) {
	t.Helper()
	if l.StartOffset() == 0 {
		return
	}
	if bs := readLog(t, l); len(bs) > 0 && !bs[0].Checkpoint {
		t.Fatalf("node %d's log starts at %d with %v, not a checkpoint", id, l.StartOffset(), describe(bs[:1]))
	}
}

// countingHandler counts the replicas' log messages, to show what the
// faults exercised.
type countingHandler struct {
	mu     sync.Mutex
	counts map[string]int
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *countingHandler) WithGroup(string) slog.Handler            { return h }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.counts[r.Message]++
	return nil
}

func (h *countingHandler) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.counts[msg]
}

func (h *countingHandler) snapshot() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.counts)
}
