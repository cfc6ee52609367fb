package broker

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/config"
	"github.com/sluice-io/sluice/internal/clock"
	"github.com/sluice-io/sluice/netio"
	"github.com/sluice-io/sluice/segment"
)

// fakeClock is a clock tests move by hand; the broker's timers (group
// sessions, fetch long polls, the background tasks) fire as it moves.
type fakeClock struct{ *clock.Fake }

func newFakeClock() *fakeClock {
	return &fakeClock{clock.NewFake(time.UnixMilli(1_700_000_000_000))}
}

func (c *fakeClock) advance(d time.Duration) { c.Advance(d) }

// memBroker is a whole broker on a MemFS, with a fake clock and no network:
// requests go to Handle as netio would hand them over.
type memBroker struct {
	*Broker
	t   *testing.T
	log *lockedBuffer // the broker's log lines
}

const memLogDir = "/data"

func memConfig(t *testing.T, sets ...string) *config.Broker {
	t.Helper()
	cfg, err := config.Load("", append([]string{"listeners=PLAINTEXT://127.0.0.1:0", "admin.listener=", "log.dirs=" + memLogDir}, sets...))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// tryOpenMem opens a broker on fsys without any network.
func tryOpenMem(t *testing.T, fsys segment.FS, clock *fakeClock, sets ...string) (*memBroker, error) {
	t.Helper()
	log := &lockedBuffer{}
	b, err := NewWith(memConfig(t, sets...), Deps{
		FS:     fsys,
		Clock:  clock.Fake,
		Logger: slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		return nil, err
	}
	return &memBroker{Broker: b, t: t, log: log}, nil
}

func openMem(t *testing.T, fsys segment.FS, clock *fakeClock, sets ...string) *memBroker {
	t.Helper()
	mb, err := tryOpenMem(t, fsys, clock, sets...)
	if err != nil {
		t.Fatal(err)
	}
	if mb.engine != nil || mb.Addr() != nil {
		t.Fatalf("a broker without Deps.Network has an engine (%v) or a listener (%v)", mb.engine, mb.Addr())
	}
	return mb
}

// kill abandons the broker as a crash would: nothing of it runs or writes
// again (it has no background tasks without Listen), and its locks go with
// the MemFS's Crash.
func (mb *memBroker) kill() { mb.groups.Close() }

// callHandle hands req to Handle at the newest version both kmsg and the broker
// know, and decodes the response, whose file parts it reads as an engine
// would send them.
func callHandle[R kmsg.Response](mb *memBroker, req kmsg.Request) R {
	mb.t.Helper()
	a := apis[req.Key()]
	if a == nil {
		mb.t.Fatalf("%T: API not served", req)
	}
	return callHandleAt[R](mb, req, min(req.MaxVersion(), a.max))
}

// callHandleAt is callHandle at version v.
func callHandleAt[R kmsg.Response](mb *memBroker, req kmsg.Request, v int16) R {
	mb.t.Helper()
	req.SetVersion(v)
	out := mb.Handle(context.Background(), &netio.Request{Key: req.Key(), Version: v, Body: req.AppendTo(nil)})
	if out == nil || out.CloseAfter {
		mb.t.Fatalf("%T v%d: no response (%v)", req, v, out)
	}
	var body []byte
	for _, p := range out.Parts() {
		if p.File == nil {
			body = append(body, p.Bytes...)
			continue
		}
		b := make([]byte, p.Len)
		if _, err := p.File.ReadAt(b, p.Off); err != nil {
			mb.t.Fatalf("%T: reading a file part: %v", req, err)
		}
		body = append(body, b...)
	}
	if out.Release != nil {
		out.Release()
	}
	resp := req.ResponseKind()
	resp.SetVersion(v)
	if err := resp.ReadFrom(body); err != nil {
		mb.t.Fatalf("decode %T v%d: %v", resp, v, err)
	}
	return resp.(R)
}

func (mb *memBroker) createTopic(name string, configs map[string]string) [16]byte {
	mb.t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 1, 1
	for k, v := range configs {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(v)
		rt.Configs = append(rt.Configs, c)
	}
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 5000
	resp := callHandle[*kmsg.CreateTopicsResponse](mb, req)
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		mb.t.Fatalf("create topic %s: %v", name, err)
	}
	return resp.Topics[0].TopicID
}

// produce appends one batch of values to partition 0 of topic, acks=-1,
// and returns its base offset.
func (mb *memBroker) produce(topic string, values ...string) (int64, error) {
	mb.t.Helper()
	kvs := make([]segment.KV, len(values))
	for i, v := range values {
		kvs[i] = segment.KV{Value: []byte(v)}
	}
	batch, err := segment.BuildBatch(kvs, mb.now().UnixMilli())
	if err != nil {
		mb.t.Fatal(err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	if tp := mb.topics.get(topic); tp != nil {
		rt.TopicID = tp.id // produce v13+ names topics by id
	}
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := callHandle[*kmsg.ProduceResponse](mb, req)
	p := resp.Topics[0].Partitions[0]
	return p.BaseOffset, kerr.ErrorForCode(p.ErrorCode)
}

// fetchAll returns the values of partition 0 of topic from offset 0, and
// its high watermark.
func (mb *memBroker) fetchAll(topic string, id [16]byte) ([]string, int64, error) {
	mb.t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxBytes, req.MinBytes, req.MaxWaitMillis = -1, 1<<20, 0, 0
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topic, id
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes, rp.CurrentLeaderEpoch, rp.LogStartOffset = 1<<20, -1, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := callHandle[*kmsg.FetchResponse](mb, req)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, 0, err
	}
	p := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		return nil, 0, err
	}
	var vals []string
	for rest := p.RecordBatches; len(rest) > 0; {
		h, err := segment.ParseBatchHeader(rest)
		if err == nil {
			err = segment.EachRecord(rest, func(r segment.Record) error {
				if r.Offset != int64(len(vals)) {
					return fmt.Errorf("record at offset %d after %d records", r.Offset, len(vals))
				}
				vals = append(vals, string(r.Value))
				return nil
			})
		}
		if err != nil {
			mb.t.Fatalf("fetch %s: %v", topic, err)
		}
		rest = rest[h.Size():]
	}
	return vals, p.HighWatermark, nil
}

func (mb *memBroker) mustFetch(topic string, id [16]byte) []string {
	mb.t.Helper()
	vals, hw, err := mb.fetchAll(topic, id)
	if err != nil {
		mb.t.Fatalf("fetch %s: %v", topic, err)
	}
	if hw != int64(len(vals)) {
		mb.t.Fatalf("fetch %s: high watermark %d, %d records", topic, hw, len(vals))
	}
	return vals
}

func (mb *memBroker) mustProduce(topic string, values ...string) {
	mb.t.Helper()
	if _, err := mb.produce(topic, values...); err != nil {
		mb.t.Fatalf("produce to %s: %v", topic, err)
	}
}

func sameValues(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("%s: %q, want %q", what, got, want)
	}
}

// A whole broker runs in memory: topics are created, records produced and
// fetched through Handle, the broker crashes (every unsynced write is
// dropped) and restarts on the same MemFS: what was acknowledged with
// flush.messages=1, or flushed by flush.ms on the fake clock, is all
// there, in order, and the broker takes new writes after it. Then a clean
// shutdown keeps everything and the next start knows it was clean.
func TestWholeBrokerInMemoryCrashAndRestart(t *testing.T) {
	mem := segment.NewMemFS()
	clock := newFakeClock()
	// The flush task runs every 100 ms of the broker's clock; topics
	// without flush.ms are not flushed by time.
	b1 := openMem(t, mem, clock, "log.flush.scheduler.interval.ms=100", "log.flush.interval.ms=9223372036854775807")
	synced := b1.createTopic("synced", map[string]string{"flush.messages": "1"})
	timed := b1.createTopic("timed", map[string]string{"flush.ms": "1000"})
	lazy := b1.createTopic("lazy", nil)

	b1.mustProduce("synced", "s0", "s1")
	b1.mustProduce("synced", "s2")
	b1.mustProduce("timed", "t0")
	b1.mustProduce("lazy", "l0", "l1")
	sameValues(t, "synced before the crash", b1.mustFetch("synced", synced), "s0", "s1", "s2")
	sameValues(t, "lazy before the crash", b1.mustFetch("lazy", lazy), "l0", "l1")
	// flush.ms runs on the broker's clock, in the replica manager's
	// schedule: the first call arms the flush task, its first run starts
	// the partition's interval, a run after flush.ms flushes it.
	b1.replicas.RunDue()
	clock.advance(100 * time.Millisecond)
	b1.replicas.RunDue()
	clock.advance(1500 * time.Millisecond)
	b1.replicas.RunDue()
	b1.mustProduce("timed", "t1") // not flushed: may be lost

	b1.kill()
	mem.Crash()

	b2 := openMem(t, mem, clock)
	if l := b2.log.lines("logs loaded"); len(l) != 1 || !strings.Contains(l[0], "unclean_shutdown=true") {
		t.Fatalf("restart after a crash did not see an unclean shutdown: %q", l)
	}
	sameValues(t, "synced after the crash", b2.mustFetch("synced", synced), "s0", "s1", "s2")
	if got := b2.mustFetch("timed", timed); len(got) < 1 || got[0] != "t0" {
		t.Fatalf("timed after the crash: %q, want t0 (flushed by flush.ms) first", got)
	}
	// Unsynced records may be lost, never reordered or invented.
	if got := b2.mustFetch("lazy", lazy); len(got) > 2 || strings.Join(got, ",") != strings.Join([]string{"l0", "l1"}[:len(got)], ",") {
		t.Fatalf("lazy after the crash: %q, want a prefix of [l0 l1]", got)
	}
	b2.mustProduce("synced", "s3")
	b2.mustProduce("lazy", "l2")
	lazyBefore := b2.mustFetch("lazy", lazy)
	if err := b2.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	mem.Crash() // a clean shutdown flushed everything: a crash now loses nothing

	b3 := openMem(t, mem, clock)
	defer b3.Shutdown(context.Background())
	if l := b3.log.lines("logs loaded"); len(l) != 1 || !strings.Contains(l[0], "unclean_shutdown=false") {
		t.Fatalf("restart after a clean shutdown saw an unclean one: %q", l)
	}
	sameValues(t, "synced after a clean shutdown", b3.mustFetch("synced", synced), "s0", "s1", "s2", "s3")
	sameValues(t, "lazy after a clean shutdown", b3.mustFetch("lazy", lazy), lazyBefore...)
}
