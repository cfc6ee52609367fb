package storage

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// newCluster starts an in-process kfake cluster and returns client options
// reaching it.
func newCluster(t *testing.T) []kgo.Opt {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// rawRecords reads every record of topic from the start to the end, in
// partition then offset order.
func rawRecords(t *testing.T, opts []kgo.Opt, topic string) []*kgo.Record {
	t.Helper()
	var mu sync.Mutex
	var recs []*kgo.Record
	l, err := openTopicLog(testCtx(t), opts, topicSpec{TopicSettings: TopicSettings{Topic: topic, Partitions: 1}}, nil,
		func(r *kgo.Record) { mu.Lock(); recs = append(recs, r); mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	if err := l.readToEnd(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	sort.SliceStable(recs, func(i, j int) bool {
		if recs[i].Partition != recs[j].Partition {
			return recs[i].Partition < recs[j].Partition
		}
		return recs[i].Offset < recs[j].Offset
	})
	return recs
}

// updates collects a ConfigStore's updates.
type updates struct {
	mu  sync.Mutex
	got []ConfigUpdate
	ch  chan struct{}
}

func newUpdates() *updates { return &updates{ch: make(chan struct{}, 1)} }

func (u *updates) add(c ConfigUpdate) {
	u.mu.Lock()
	u.got = append(u.got, c)
	u.mu.Unlock()
	select {
	case u.ch <- struct{}{}:
	default:
	}
}

func (u *updates) take() []ConfigUpdate {
	u.mu.Lock()
	defer u.mu.Unlock()
	g := u.got
	u.got = nil
	return g
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// shortCtx is a context for one poll.
func shortCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	t.Cleanup(cancel)
	return ctx
}
