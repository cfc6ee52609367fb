package broker

import (
	"context"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/isr"
)

// alterBatcher sends this node's leaders' AlterPartition items to the
// controller together, one request at a time, as Kafka's
// AlterPartitionManager does: items that arrive while a request is out
// wait and go in the next one. A broker that rejoins after a restart
// makes one ISR expansion per partition it follows, thousands with many
// partitions; sent one by one, each was a commit of its own on the
// controller (replicated and fsynced), about 80 a second, and the ISRs
// of 10,000 partitions took minutes to fill. Batched, a rejoin is a few
// commits.
//
// One request at a time also keeps a partition's items in order: an item
// is decided against the metadata the previous request committed.
type alterBatcher struct {
	// send decides or sends items as one AlterPartition and returns one
	// result per item, in order.
	send func(items []controller.AlterPartitionItem) []isr.AlterResult

	mu      sync.Mutex
	queue   []*pendingAlter
	running bool // a goroutine is sending; it drains the queue before it ends
}

// pendingAlter is one item waiting for its answer.
type pendingAlter struct {
	ctx  context.Context
	item controller.AlterPartitionItem
	done chan isr.AlterResult // buffered: the sender never blocks on a waiter gone
}

// maxAlterItems bounds one request, so that one commit and one metadata
// batch stay a few hundred KiB however many items wait.
const maxAlterItems = 2000

// errAlterReplaced answers an item that a newer one for the same
// partition replaced before it was sent.
var errAlterReplaced = fmt.Errorf("replaced by a newer proposal for the same partition before it was sent: %w", kerr.OperationNotAttempted)

func newAlterBatcher(send func([]controller.AlterPartitionItem) []isr.AlterResult) *alterBatcher {
	return &alterBatcher{send: send}
}

// submit queues item and waits for its answer, or for ctx to end. A
// queued item for the same partition that was not sent yet is replaced
// (its waiter answered errAlterReplaced): a request must not name a
// partition twice, as both would be validated against the same metadata.
func (a *alterBatcher) submit(ctx context.Context, item controller.AlterPartitionItem) isr.AlterResult {
	p := &pendingAlter{ctx: ctx, item: item, done: make(chan isr.AlterResult, 1)}
	a.mu.Lock()
	replaced := false
	for i, q := range a.queue {
		if q.item.TopicID == item.TopicID && q.item.Topic == item.Topic && q.item.Partition == item.Partition {
			q.done <- isr.AlterResult{Err: errAlterReplaced}
			a.queue[i] = p
			replaced = true
			break
		}
	}
	if !replaced {
		a.queue = append(a.queue, p)
	}
	if !a.running {
		a.running = true
		go a.run()
	}
	a.mu.Unlock()
	select {
	case r := <-p.done:
		return r
	case <-ctx.Done():
		return isr.AlterResult{Err: fmt.Errorf("AlterPartition not answered: %w", ctx.Err())}
	}
}

// run sends what is queued, one request at a time, until nothing is.
func (a *alterBatcher) run() {
	for {
		a.mu.Lock()
		var batch []*pendingAlter
		for len(a.queue) > 0 && len(batch) < maxAlterItems {
			p := a.queue[0]
			a.queue[0] = nil
			a.queue = a.queue[1:]
			if p.ctx.Err() == nil { // its waiter gave up: nobody reads the answer
				batch = append(batch, p)
			}
		}
		if len(batch) == 0 {
			a.running = false
			a.queue = nil
			a.mu.Unlock()
			return
		}
		a.mu.Unlock()
		items := make([]controller.AlterPartitionItem, len(batch))
		for i, p := range batch {
			items[i] = p.item
		}
		results := a.send(items)
		for i, p := range batch {
			r := isr.AlterResult{Err: fmt.Errorf("AlterPartition answered %d items of %d: %w", len(results), len(batch), kerr.UnknownServerError)}
			if i < len(results) {
				r = results[i]
			}
			p.done <- r
		}
	}
}
