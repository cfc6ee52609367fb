package perf

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/broker"
	"github.com/sluice-io/sluice/config"
	"github.com/sluice-io/sluice/netio"
)

// BenchmarkEngines runs the same workloads against a broker on each network
// engine, std then uring, in one run, and reports uring's throughput as a
// ratio to std's ("uring/std") on the uring sub-benchmark. Workloads:
//
//   - produce: 1 KiB records, acks=1, one partition;
//   - fetch: raw fetches of a page-cached topic (record bytes not decoded);
//   - small-requests: ApiVersions over 1,000 concurrent connections.
func BenchmarkEngines(b *testing.B) {
	for _, w := range []struct {
		name string
		run  func(b *testing.B, addr string) float64 // returns ops/s
	}{
		{"produce-1KiB-acks1", engineProduce},
		{"fetch-page-cached", engineFetch},
		{"small-requests-1000-conns", engineSmallRequests},
	} {
		b.Run(w.name, func(b *testing.B) {
			var std float64
			for _, engine := range []string{"std", "uring"} {
				b.Run("engine="+engine, func(b *testing.B) {
					addr, chosen := startEngineBroker(b, engine)
					if chosen != engine {
						b.Skipf("engine %s unavailable here (broker chose %s)", engine, chosen)
					}
					rate := w.run(b, addr)
					if engine == "std" {
						std = rate
					} else if std > 0 {
						b.ReportMetric(rate/std, "uring/std")
					}
				})
			}
		})
	}
}

// startEngineBroker starts an in-process broker on engine and returns its
// address and the engine it actually runs.
func startEngineBroker(b *testing.B, engine string) (string, string) {
	cfg, err := config.Load("", []string{"listeners=PLAINTEXT://127.0.0.1:0", "admin.listener=127.0.0.1:0", "log.dirs=" + b.TempDir(), "netio.engine=" + engine})
	if err != nil {
		b.Fatal(err)
	}
	br, err := broker.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = br.Shutdown(context.Background()) })
	if err := br.Listen(); err != nil {
		if engine == "uring" {
			b.Skipf("engine uring unavailable: %v", err)
		}
		b.Fatal(err)
	}
	return br.Addr().String(), br.EngineName()
}

func engineProduce(b *testing.B, addr string) float64 {
	seeds := []string{addr}
	topic := newTopic(b, seeds, 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(1<<16))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	value := make([]byte, 1024)
	_, _ = rand.Read(value)
	ctx := context.Background()
	b.SetBytes(1024)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cl.Produce(ctx, &kgo.Record{Topic: topic, Value: value}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	rate := float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "records/s")
	return rate
}

func engineFetch(b *testing.B, addr string) float64 {
	seeds := []string{addr}
	topic, id := newTopicID(b, seeds, 1)
	produce(b, seeds, topic, 20000, 1024) // 20 MiB, re-read from the start
	c := dialRaw(b, addr)
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxBytes, req.SessionEpoch = -1, 8<<20, -1
	part := kmsg.NewFetchRequestTopicPartition()
	part.PartitionMaxBytes, part.CurrentLeaderEpoch, part.LastFetchedEpoch = 8<<20, -1, -1
	req.Topics = []kmsg.FetchRequestTopic{{Topic: topic, TopicID: id, Partitions: []kmsg.FetchRequestTopicPartition{part}}}
	var total int64
	offset := int64(0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req.Topics[0].Partitions[0].FetchOffset = offset
		resp := kmsg.NewPtrFetchResponse()
		c.roundTrip(b, req, 11, resp)
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 {
			b.Fatalf("fetch error %d", p.ErrorCode)
		}
		total += int64(len(p.RecordBatches))
		if offset = lastOffset(p.RecordBatches) + 1; offset >= p.HighWatermark {
			offset = 0
		}
	}
	rate := float64(total) / b.Elapsed().Seconds()
	b.ReportMetric(rate/1e6, "MB/s")
	return rate
}

func engineSmallRequests(b *testing.B, addr string) float64 {
	const conns = 1000
	cs := make([]*rawClient, conns)
	for i := range cs {
		cs[i] = dialRaw(b, addr)
	}
	per := (b.N + conns - 1) / conns
	b.ResetTimer()
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				c.roundTrip(b, kmsg.NewPtrApiVersionsRequest(), 3, kmsg.NewPtrApiVersionsResponse())
			}
		}()
	}
	wg.Wait()
	rate := float64(per*conns) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "requests/s")
	return rate
}

// rawClient is one connection speaking the protocol at a pinned version.
// Responses are read into one reused buffer, so that measuring a broker's
// fetch is not bounded by the client allocating every frame.
type rawClient struct {
	nc   net.Conn
	w    *bufio.Writer
	r    *bufio.Reader
	corr int32
	buf  []byte
	rbuf []byte
}

func dialRaw(b *testing.B, addr string) *rawClient {
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { nc.Close() })
	return &rawClient{nc: nc, w: bufio.NewWriter(nc), r: bufio.NewReaderSize(nc, 64<<10)}
}

func (c *rawClient) roundTrip(b *testing.B, req kmsg.Request, version int16, resp kmsg.Response) {
	req.SetVersion(version)
	c.corr++
	c.buf = netio.AppendRequestHeader(append(c.buf[:0], 0, 0, 0, 0), req.Key(), version, c.corr, nil)
	c.buf = req.AppendTo(c.buf)
	binary.BigEndian.PutUint32(c.buf, uint32(len(c.buf)-4))
	_, err := c.w.Write(c.buf)
	if err == nil {
		err = c.w.Flush()
	}
	if err != nil {
		b.Error(fmt.Errorf("%T: sending: %w", req, err))
		return
	}
	payload, err := c.readFrame()
	if err != nil {
		b.Error(fmt.Errorf("%T: %w", req, err))
		return
	}
	_, body, err := netio.ReadResponseHeader(payload, req.Key(), version)
	if err == nil {
		resp.SetVersion(version)
		err = resp.ReadFrom(body)
	}
	if err != nil {
		b.Error(err)
	}
}

// readFrame reads one size-prefixed response into the reused buffer.
func (c *rawClient) readFrame() ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(c.r, size[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(size[:]))
	if cap(c.rbuf) < n {
		c.rbuf = make([]byte, n)
	}
	c.rbuf = c.rbuf[:n]
	_, err := io.ReadFull(c.r, c.rbuf)
	return c.rbuf, err
}
