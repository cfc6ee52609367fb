package metarepl

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sluice-io/sluice/segment"
)

func recordsOf(vals ...string) [][]byte {
	out := make([][]byte, len(vals))
	for i, v := range vals {
		out[i] = []byte(v)
	}
	return out
}

// waitVoterLogs waits until every voter's durable log is exactly want.
func (c *cluster) waitVoterLogs(want []string) {
	c.t.Helper()
	c.waitFor(fmt.Sprintf("every voter's log to be %v", want), func() bool {
		for id := int32(1); id <= 3; id++ {
			bs, err := c.logs[id].Read(0, 1<<30, c.logs[id].End())
			if err != nil || !slices.Equal(describe(bs), want) {
				return false
			}
		}
		return true
	})
}

// TestAppendAtRefusesAStaleEpoch: a voter deposed and re-elected leads a
// new epoch; an AppendAt for the old epoch (a caller whose view predates
// the takeover) is refused and writes nothing, even though the node leads
// again and the offset is right. A follower refuses any epoch.
func TestAppendAtRefusesAStaleEpoch(t *testing.T) {
	c := newCluster(t, 5000, 2)
	cfg1 := c.elect(1, 2, 3, observerID)
	if err := c.nodes[1].AppendAt(c.ctx(), cfg1.Epoch, 0, recordsOf("a")); err != nil {
		t.Fatalf("append in epoch %d at 0: %v", cfg1.Epoch, err)
	}
	cfg2 := c.elect(1, 2, 3, observerID)
	end := c.logs[1].End()
	if end != 1 {
		t.Fatalf("log end %d after one record", end)
	}
	err := c.nodes[1].AppendAt(c.ctx(), cfg1.Epoch, end, recordsOf("stale"))
	if !errors.Is(err, ErrEpochChanged) || errors.Is(err, ErrOffsetMismatch) || errors.Is(err, ErrNotLeader) {
		t.Fatalf("append for the old epoch %d on the leader of %d: %v, want ErrEpochChanged only", cfg1.Epoch, cfg2.Epoch, err)
	}
	if err := c.nodes[1].AppendAt(c.ctx(), cfg2.Epoch+1, end, recordsOf("future")); !errors.Is(err, ErrEpochChanged) {
		t.Fatalf("append for a later epoch: %v, want ErrEpochChanged", err)
	}
	err = c.nodes[2].AppendAt(c.ctx(), cfg2.Epoch, end, recordsOf("on-follower"))
	if !errors.Is(err, ErrEpochChanged) || !errors.Is(err, ErrNotLeader) {
		t.Fatalf("append on a follower: %v, want ErrEpochChanged and ErrNotLeader", err)
	}
	if got := c.logs[1].End(); got != end {
		t.Fatalf("refused appends moved the log end to %d, was %d", got, end)
	}
	// The next append in the current epoch lands right at end: nothing
	// was written in between, here or on any voter.
	if err := c.nodes[1].AppendAt(c.ctx(), cfg2.Epoch, end, recordsOf("b")); err != nil {
		t.Fatalf("append in epoch %d at %d: %v", cfg2.Epoch, end, err)
	}
	c.waitVoterLogs([]string{fmt.Sprintf("0/%d:a", cfg1.Epoch), fmt.Sprintf("1/%d:b", cfg2.Epoch)})
}

// TestAppendAtRefusesAWrongOffset: the offset is the log end, written but
// uncommitted batches included; anything else is refused with nothing
// written.
func TestAppendAtRefusesAWrongOffset(t *testing.T) {
	c := newCluster(t, 5000, 2)
	cfg := c.elect(1, 2, 3, observerID)
	e := cfg.Epoch
	off := c.append(1, "a", "b")
	for _, at := range []int64{off, off + 1, off + 3, -1} {
		err := c.nodes[1].AppendAt(c.ctx(), e, at, recordsOf("wrong"))
		if !errors.Is(err, ErrOffsetMismatch) || errors.Is(err, ErrEpochChanged) {
			t.Fatalf("append at %d with the log ending at %d: %v, want ErrOffsetMismatch", at, off+2, err)
		}
	}
	if got := c.logs[1].End(); got != off+2 {
		t.Fatalf("refused appends moved the log end to %d, want %d", got, off+2)
	}
	// A batch written but not committed (voter 3 cannot fetch) counts:
	// the committed end is not the log end.
	c.net.Cut(3, 1)
	pending := make(chan error, 1)
	go func() { pending <- c.nodes[1].AppendAt(c.ctx(), e, off+2, recordsOf("c")) }()
	c.waitFor("the pending append written", func() bool { return c.logs[1].End() == off+3 })
	hw := c.nodes[1].Status().HighWatermark
	if hw != off+2 {
		t.Fatalf("high watermark %d with c uncommitted, want %d", hw, off+2)
	}
	if err := c.nodes[1].AppendAt(c.ctx(), e, hw, recordsOf("at-hw")); !errors.Is(err, ErrOffsetMismatch) {
		t.Fatalf("append at the high watermark %d below the log end: %v, want ErrOffsetMismatch", hw, err)
	}
	c.net.HealAll()
	if err := <-pending; err != nil {
		t.Fatalf("pending append: %v", err)
	}
	if err := c.nodes[1].AppendAt(c.ctx(), e, off+3, recordsOf("d")); err != nil {
		t.Fatalf("append at the log end %d: %v", off+3, err)
	}
	c.waitVoterLogs([]string{fmt.Sprintf("0/%d:a,b", e), fmt.Sprintf("2/%d:c", e), fmt.Sprintf("3/%d:d", e)})
}

// TestAppendAtInAGroup writes one group (one write, one fsync) of
// AppendAts, Appends and refused AppendAts, handed to the loop together:
// each AppendAt is checked against the end after the accepted requests
// before it, and a refused one does not shift the rest. Refusals are
// answered before the group's commit.
func TestAppendAtInAGroup(t *testing.T) {
	c := newCluster(t, 5000, 2)
	cfg := c.elect(1, 2, 3, observerID)
	e := cfg.Epoch
	off := c.append(1, "x")
	end := off + 1
	type want struct {
		at      int64 // the offset the batch lands at, -1 when refused
		refusal error
	}
	reqs := []appendReq{
		{records: recordsOf("g0"), at: true, epoch: e, offset: end},
		{records: recordsOf("g1", "g1"), at: true, epoch: e, offset: end + 1},
		{records: recordsOf("bad"), at: true, epoch: e, offset: end + 7},
		{records: recordsOf("g2"), at: true, epoch: e, offset: end + 3},
		{records: recordsOf("again"), at: true, epoch: e, offset: end + 3},
		{records: recordsOf("stale"), at: true, epoch: e - 1, offset: end + 4},
		{records: recordsOf("plain")},
		{records: recordsOf("g3"), at: true, epoch: e, offset: end + 5},
	}
	wants := []want{{end, nil}, {end + 1, nil}, {-1, ErrOffsetMismatch}, {end + 3, nil}, {-1, ErrOffsetMismatch},
		{-1, ErrEpochChanged}, {end + 4, nil}, {end + 5, nil}}
	for i := range reqs {
		reqs[i].ch = make(chan appendResult, 1)
	}
	r := c.nodes[1]
	if err := r.call(c.ctx(), func() error { r.append(slices.Clone(reqs)); return nil }); err != nil {
		t.Fatal(err)
	}
	for i, req := range reqs {
		if wants[i].refusal == nil {
			continue
		}
		select {
		case res := <-req.ch:
			if !errors.Is(res.err, wants[i].refusal) {
				t.Fatalf("request %d (%s): %v, want %v", i, req.records[0], res.err, wants[i].refusal)
			}
		default:
			t.Fatalf("request %d (%s) not refused at once", i, req.records[0])
		}
	}
	for i, req := range reqs {
		if wants[i].refusal != nil {
			continue
		}
		select {
		case res := <-req.ch:
			if res.err != nil || res.offset != wants[i].at {
				t.Fatalf("request %d (%s): offset %d err %v, want %d", i, req.records[0], res.offset, res.err, wants[i].at)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("request %d (%s) not committed", i, req.records[0])
		}
	}
	c.waitVoterLogs([]string{fmt.Sprintf("0/%d:x", e), fmt.Sprintf("1/%d:g0", e), fmt.Sprintf("2/%d:g1,g1", e),
		fmt.Sprintf("4/%d:g2", e), fmt.Sprintf("5/%d:plain", e), fmt.Sprintf("6/%d:g3", e)})
}

// TestAppendAtConcurrent: writers reserve consecutive offsets and hand
// their AppendAts to the loop in that order, so they group and all commit
// where expected; racing writers that each append at the log end they
// last saw commit exactly once per offset, and a refused one is in no log.
func TestAppendAtConcurrent(t *testing.T) {
	c := newCluster(t, 5000, 2)
	cfg := c.elect(1, 2, 3, observerID)
	e, r := cfg.Epoch, c.nodes[1]

	const writers, each = 8, 25
	var (
		mu   sync.Mutex
		next int64
		want = map[int64]string{}
		wg   sync.WaitGroup
		errs = make(chan error, writers*each)
	)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				v := fmt.Sprintf("w%d-%d", w, i)
				req := appendReq{records: recordsOf(v), at: true, epoch: e, ch: make(chan appendResult, 1)}
				mu.Lock()
				req.offset = next
				if err := r.enqueue(c.ctx(), req); err != nil {
					mu.Unlock()
					errs <- err
					return
				}
				want[next] = fmt.Sprintf("%d/%d:%s", next, e, v)
				next++
				mu.Unlock()
				if res := <-req.ch; res.err != nil || res.offset != req.offset {
					errs <- fmt.Errorf("%s at %d: offset %d, %w", v, req.offset, res.offset, res.err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var reserved []string
	for off := range next {
		reserved = append(reserved, want[off])
	}
	c.waitVoterLogs(reserved)

	// Optimistic writers: each appends at the log end its last status
	// showed; the loser of a race is refused.
	var accepted, refused sync.Map // value -> offset
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				v := fmt.Sprintf("o%d-%d", w, i)
				at := r.Status().LogEndOffset
				switch err := r.AppendAt(c.ctx(), e, at, recordsOf(v)); {
				case err == nil:
					accepted.Store(v, at)
				case errors.Is(err, ErrOffsetMismatch):
					refused.Store(v, at)
				default:
					t.Errorf("%s at %d: %v", v, at, err)
				}
			}
		})
	}
	wg.Wait()
	end := r.Status().LogEndOffset
	wantLog := slices.Clone(reserved)
	nAccepted, nRefused := 0, 0
	for off := next; off < end; off++ {
		wantLog = append(wantLog, "")
	}
	accepted.Range(func(k, v any) bool {
		nAccepted++
		off := v.(int64)
		if off < next || off >= end || wantLog[off] != "" {
			t.Errorf("%s accepted at %d (log %d..%d), taken twice or outside", k, off, next, end)
			return true
		}
		wantLog[off] = fmt.Sprintf("%d/%d:%s", off, e, k)
		return true
	})
	refused.Range(func(any, any) bool { nRefused++; return true })
	if nAccepted+nRefused != writers*each || int64(nAccepted) != end-next {
		t.Fatalf("%d accepted, %d refused of %d; log grew by %d", nAccepted, nRefused, writers*each, end-next)
	}
	// Every voter's log is exactly the accepted batches at their offsets:
	// no refused one, no gap.
	c.waitVoterLogs(wantLog)
	t.Logf("optimistic writers: %d accepted, %d refused", nAccepted, nRefused)
}

// An append that returned is readable through Committed at once: the
// controller's Store publishes its end when AppendAt returns, and brokers
// fetch up to it through Committed. The high watermark used to be
// persisted only at the end of the event that woke the append, so a
// fetch racing it found nothing, parked and answered at its max wait.
func TestCommittedReadableWhenAppendReturns(t *testing.T) {
	// The leader's high-watermark writes take a while, as an fsync does
	// on a real disk: the append's caller must not get there first.
	c := newClusterOn(t, 10_000, 1, func(id int32) (segment.FS, string) {
		fsys := segment.FS(segment.NewMemFS())
		if id == 1 {
			fsys = slowHWFS{fsys}
		}
		return fsys, "/meta"
	}, 0)
	cfg := c.elect(1, 2, 3)
	end := int64(0)
	for i := range 50 {
		if err := c.nodes[1].AppendAt(c.ctx(), cfg.Epoch, end, recordsOf(fmt.Sprint(i))); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		// Read the file itself, not through the Log (whose lock a
		// write in progress holds, which would hide the race).
		_, persisted, err := readHW(c.fss[1], filepath.Join(c.dirs[1], hwFile))
		if err != nil {
			t.Fatal(err)
		}
		bs, err := c.nodes[1].Committed(end, 1<<20)
		if err != nil || len(bs) != 1 || bs[0].Offset != end {
			t.Fatalf("append %d at %d returned, but Committed gives %d batches (%v)", i, end, len(bs), err)
		}
		if persisted < bs[0].End() {
			t.Fatalf("append %d returned with the high watermark persisted at %d, below its end %d", i, persisted, bs[0].End())
		}
		end = bs[0].End()
	}
}

// slowHWFS delays every open of the high-watermark file, as a slow disk
// delays its write and fsync.
type slowHWFS struct{ segment.FS }

func (f slowHWFS) OpenFile(name string, flag int, perm os.FileMode) (segment.File, error) {
	if filepath.Base(name) == hwFile && flag&(os.O_WRONLY|os.O_RDWR) != 0 {
		time.Sleep(20 * time.Millisecond)
	}
	return f.FS.OpenFile(name, flag, perm)
}
