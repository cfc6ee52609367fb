package runtime

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/connect/data"
)

// countingSource returns batches of one record forever and counts Polls.
type countingSource struct {
	mu        sync.Mutex
	polls     int
	seq       uint64
	committed uint64
	polled    chan int // each Poll's number, as it starts
}

func (s *countingSource) Start(context.Context, map[string]string, []SourceOffset) error { return nil }

func (s *countingSource) Poll(ctx context.Context, _ int, _ time.Duration) (PolledBatch, error) {
	s.mu.Lock()
	s.polls++
	n := s.polls
	s.seq++
	seq := s.seq
	s.mu.Unlock()
	select {
	case s.polled <- n:
	default:
	}
	return PolledBatch{Seq: seq, Records: []*data.Record{{
		Topic: "t", Partition: -1, Timestamp: -1, Value: strconv.Itoa(n), ValueSchema: data.StringSchema,
		SourcePartition: map[string]any{"p": "0"}, SourceOffset: map[string]any{"n": int64(n)},
	}}}, nil
}

func (s *countingSource) Commit(_ context.Context, seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq > s.seq {
		return errors.New("commit past the last batch polled")
	}
	s.committed = seq
	return nil
}

func (s *countingSource) Stop(context.Context) error { return nil }

// gatedConverter blocks converting the first value until release closes.
type gatedConverter struct {
	release chan struct{}
	once    sync.Once
}

func (c *gatedConverter) FromConnect(_ string, _ *data.Schema, v any) ([]byte, error) {
	if v == "1" {
		c.once.Do(func() { <-c.release })
	}
	if s, ok := v.(string); ok {
		return []byte(s), nil
	}
	return nil, nil
}

func (c *gatedConverter) ToConnect(string, []byte) (*data.Schema, any, error) {
	return nil, nil, errors.New("not used")
}

// The worker polls the next batch while it still converts and produces the
// last one, so the plugin's work and the worker's overlap: with batch 1
// held in the converter, Poll 2 must still be called.
func TestSourceTaskPollsAheadWhileProducing(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	producer, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	src := &countingSource{polled: make(chan int, 16)}
	conv := &gatedConverter{release: make(chan struct{})}
	id := TaskID{Connector: "ahead", Task: 0}
	st := &sourceTask{
		taskPipeline: taskPipeline{id: id, keyConv: conv, valueConv: conv,
			logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
			metrics: NewMetrics(prometheus.NewRegistry()).task(id)},
		client: src, producer: producer, offsets: newMemOffsets(),
		flushInt: time.Hour, flushTO: 5 * time.Second,
		pending: map[string]SourceOffset{}, gate: newPauseGate(false), seenTopics: map[string]bool{},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- st.run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		src.mu.Lock()
		defer src.mu.Unlock()
		if src.committed > src.seq {
			t.Errorf("committed batch %d of %d polled", src.committed, src.seq)
		}
	}()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case n := <-src.polled:
			if n >= 2 {
				close(conv.release)
				return
			}
		case <-deadline:
			close(conv.release)
			t.Fatal("no second Poll while the first batch was being converted: polling does not run ahead")
		}
	}
}

// A source producer's requests are capped at Kafka's max.request.size
// default (1 MiB), and still hold a full batch.
func TestSourceProducerRequestCap(t *testing.T) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers("127.0.0.1:1")}, sourceProducerOpts(kgo.NoCompression(), sourceMaxRequestBytes)...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	maxWrite, _ := cl.OptValue(kgo.BrokerMaxWriteBytes).(int32)
	maxBatch, _ := cl.OptValue(kgo.ProducerBatchMaxBytes).(int32)
	if maxWrite != 1<<20 || maxBatch <= 0 || maxBatch > maxWrite {
		t.Fatalf("max write bytes %d, max batch bytes %d", maxWrite, maxBatch)
	}
}

// producer.max.request.size sets the cap (a batch too when smaller than
// franz-go's); a bad value is an error, not ignored.
func TestSourceProducerMaxRequestSize(t *testing.T) {
	for _, tc := range []struct {
		raw       string
		wantWrite int32
		wantBatch int32 // 0: franz-go's default
	}{{"", 1 << 20, 0}, {"5242880", 5 << 20, 0}, {"4096", 4096, 4096}} {
		n, err := producerMaxRequestSize(tc.raw)
		if err != nil {
			t.Fatalf("%q: %v", tc.raw, err)
		}
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers("127.0.0.1:1")}, sourceProducerOpts(kgo.NoCompression(), n)...)...)
		if err != nil {
			t.Fatalf("%q: %v", tc.raw, err)
		}
		maxWrite, _ := cl.OptValue(kgo.BrokerMaxWriteBytes).(int32)
		maxBatch, _ := cl.OptValue(kgo.ProducerBatchMaxBytes).(int32)
		cl.Close()
		if maxWrite != tc.wantWrite || (tc.wantBatch != 0 && maxBatch != tc.wantBatch) {
			t.Errorf("%q: max write %d, batch %d; want %d, %d", tc.raw, maxWrite, maxBatch, tc.wantWrite, tc.wantBatch)
		}
	}
	for _, bad := range []string{"big", "100", "-1"} {
		if _, err := producerMaxRequestSize(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
