package quorumnet

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/testkit"
	"github.com/sluice-io/sluice/netio"
)

// BenchmarkFetch is one fetch round trip over loopback to a netio peer
// answering at once: sequential, then from parallel callers sharing the
// connection.
func BenchmarkFetch(b *testing.B) {
	f := startFake(b, "127.0.0.1:0", echo(nil))
	c, err := New(Config{NodeID: 5, Peers: map[int32]string{1: f.addr}})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	testkit.Eventually(b, 5*time.Second, "connected", func() bool {
		_, err := fetch(c, 1, 0, time.Second)
		return err == nil
	})
	b.Run("sequential", func(b *testing.B) {
		for b.Loop() {
			if _, err := fetch(c, 1, 1, 5*time.Second); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := fetch(c, 1, 1, 5*time.Second); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkSend is envelopes of 200 bytes (about a caspaxos Accept) sent
// as fast as Send takes them, far faster than one connection carries
// them: delivered/op is the share the peer got (the rest were dropped at
// the full queue) and delivered/s the rate the connection carried.
func BenchmarkSend(b *testing.B) {
	var n atomic.Int64
	f := startFake(b, "127.0.0.1:0", func(context.Context, netio.Request, Request) Response {
		n.Add(1)
		return Response{}
	})
	c, err := New(Config{NodeID: 5, Peers: map[int32]string{1: f.addr}})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	testkit.Eventually(b, 5*time.Second, "connected", func() bool {
		c.Send(1, []byte("x"))
		return n.Load() > 0
	})
	payload := make([]byte, 200)
	n.Store(0)
	start := time.Now()
	b.ResetTimer()
	for b.Loop() {
		c.Send(1, payload)
	}
	b.StopTimer()
	testkit.Poll(2*time.Second, func() bool { return n.Load()+int64(c.Stats().Dropped) >= int64(b.N) })
	b.ReportMetric(float64(n.Load())/float64(b.N), "delivered/op")
	b.ReportMetric(float64(n.Load())/time.Since(start).Seconds(), "delivered/s")
}
