package netio

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/testkit"
)

type recordingObserver struct {
	mu sync.Mutex
	ts []RequestTiming
}

func (o *recordingObserver) RequestDone(t RequestTiming) {
	o.mu.Lock()
	o.ts = append(o.ts, t)
	o.mu.Unlock()
}

func (o *recordingObserver) snapshot() []RequestTiming {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]RequestTiming(nil), o.ts...)
}

func TestObserverTimings(t *testing.T) { forEachEngine(t, testObserverTimings) }

// Three pipelined requests on one connection: each handler sleeps, so the
// second and third wait behind the first (queue time), and the third has no
// response (Send must be zero): each part of the time lands in its field.
func testObserverTimings(t *testing.T, ne newEngineFunc) {
	const sleep = 30 * time.Millisecond
	h := HandlerFunc(func(ctx context.Context, req *Request) *Response {
		time.Sleep(sleep)
		if req.CorrelationID == 3 {
			return nil
		}
		return echoCorr(ctx, req)
	})
	obs := &recordingObserver{}
	s := startEngine(t, ne, Config{Observer: obs}, h)
	c := dial(t, s)
	for corr := int32(1); corr <= 3; corr++ {
		c.send(keyProduce, 7, corr, nil)
	}
	for corr := int32(1); corr <= 2; corr++ {
		if got, _ := c.recvFor(keyProduce, 7); got != corr {
			t.Fatalf("response %d, want %d", got, corr)
		}
	}
	testkit.Eventually(t, patience, "three timings", func() bool { return len(obs.snapshot()) == 3 })
	ts := obs.snapshot()
	var queued int
	for i, rt := range ts {
		if rt.Key != keyProduce || rt.Version != 7 {
			t.Errorf("timing %d: key %d version %d, want %d/7", i, rt.Key, rt.Version, keyProduce)
		}
		if rt.Handle < sleep || rt.Handle > sleep+2*time.Second {
			t.Errorf("timing %d: handle %v, want about %v", i, rt.Handle, sleep)
		}
		if rt.Queue < 0 || rt.Send < 0 {
			t.Errorf("timing %d: negative part %+v", i, rt)
		}
		// The requests arrive together, so the later ones wait behind
		// the earlier handlers of their connection.
		if rt.Queue >= sleep {
			queued++
		}
	}
	if queued < 2 {
		t.Errorf("%d requests waited at least %v in the queue, want 2: %+v", queued, sleep, ts)
	}
	// Request 3 had no response; it is the only one with Send == 0 and it
	// is reported like the rest.
	noSend := 0
	for _, rt := range ts {
		if rt.Send == 0 {
			noSend++
		}
	}
	if noSend < 1 {
		t.Errorf("the request without a response reported a send time: %+v", ts)
	}
}
