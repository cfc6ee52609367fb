package perf

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func runProduce(ctx context.Context, o *options, rn *run) (outcome, error) {
	info, err := prepareTopic(ctx, o)
	if err != nil {
		return outcome{}, err
	}
	payloads := newPayloads(o.recordSize, o.compressibility, o.batchBytes)
	keys := newKeys(o.keys)
	clients, err := newClients(ctx, o, o.producerOpts()...)
	if err != nil {
		return outcome{}, err
	}

	m := rn.begin(o, true)
	wctx, cancel := window(ctx, o, m)
	defer cancel()
	var wg sync.WaitGroup
	for i, cl := range clients {
		// Each client starts at its own place in the pool, so clients
		// sending at the same moment do not send the same bytes.
		// Keys follow the same index, so clients spread over the keys too.
		first := i * len(payloads) / len(clients)
		wg.Go(func() { produceLoop(wctx, o, cl, m, payloads, keys, first) })
	}
	wg.Wait()
	stop := rn.end()
	closeAll(clients)
	m.settle(o.timeout)
	return m.outcome(len(info.partitions), stop), nil
}

// prepareTopic creates the topic if asked to and waits until it can be
// used.
func prepareTopic(ctx context.Context, o *options) (topicInfo, error) {
	cl, err := newClient(ctx, o)
	if err != nil {
		return topicInfo{}, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if o.create {
		if err := createTopic(ctx, adm, o); err != nil {
			return topicInfo{}, err
		}
	}
	return describeTopic(ctx, adm, o, o.create)
}

// produceLoop sends records until the window closes or --records sends
// are claimed, then waits for the records still in flight.
func produceLoop(wctx context.Context, o *options, cl *kgo.Client, m *meter, payloads, keys [][]byte, next int) {
	d := newDrain(wctx, o.timeout)
	defer d.close()
	for wctx.Err() == nil {
		sent := time.Now()
		measured, ok := m.claim(sent)
		if !ok {
			break
		}
		rec := &kgo.Record{Topic: o.topic, Value: payloads[next%len(payloads)]}
		if keys != nil {
			rec.Key = keys[next%len(keys)]
		}
		next++
		if measured {
			m.pending.Add(1)
		}
		cl.Produce(d.ctx, rec, func(r *kgo.Record, err error) {
			if !measured {
				return
			}
			defer m.pending.Add(-1)
			if err != nil {
				m.fail(1, d.explain(err))
				return
			}
			now := time.Now()
			m.lat.Record(now.Sub(sent))
			m.add(now, 1, int64(len(r.Key)+len(r.Value)))
		})
	}
	d.start()
	_ = cl.Flush(d.ctx) // records still unacknowledged when d.ctx ends fail with its error
}

// drain bounds the end of a producer. Records are produced with its ctx,
// which outlives the measurement window by --timeout: records buffered at
// the end are delivered rather than failed, yet a dead broker cannot hold
// the run forever. The bound starts with start, or when the window closes
// (a Produce blocked on a full buffer needs it too).
type drain struct {
	ctx       context.Context
	cancel    context.CancelFunc
	timeout   time.Duration
	stopAfter func() bool
	once      sync.Once
	timer     *time.Timer
}

func newDrain(wctx context.Context, timeout time.Duration) *drain {
	d := &drain{timeout: timeout}
	d.ctx, d.cancel = context.WithCancel(context.WithoutCancel(wctx))
	d.stopAfter = context.AfterFunc(wctx, d.start)
	return d
}

func (d *drain) start() {
	d.once.Do(func() { d.timer = time.AfterFunc(d.timeout, d.cancel) })
}

// explain names the bound behind a record failed by the end of the drain;
// kgo reports it as a bare "context canceled".
func (d *drain) explain(err error) error {
	if d.ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return fmt.Errorf("not acknowledged within --timeout %s after the end of the run: %w", d.timeout, err)
	}
	return err
}

func (d *drain) close() {
	d.stopAfter()
	d.once.Do(func() {}) // no timer may start after this
	if d.timer != nil {
		d.timer.Stop()
	}
	d.cancel()
}

// newClients builds --clients clients with the same options.
func newClients(ctx context.Context, o *options, opts ...kgo.Opt) ([]*kgo.Client, error) {
	clients := make([]*kgo.Client, 0, o.clients)
	for range o.clients {
		cl, err := newClient(ctx, o, opts...)
		if err != nil {
			closeAll(clients)
			return nil, err
		}
		clients = append(clients, cl)
	}
	return clients, nil
}

func closeAll(clients []*kgo.Client) {
	for _, cl := range clients {
		cl.Close()
	}
}
