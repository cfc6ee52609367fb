package perf

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Raw fetching keeps one Fetch in flight per partition leader and client,
// long-polling like a consumer. A broker failing requests or partitions
// over and over is given up on rather than hammered.
const (
	rawMaxWait      = 500 * time.Millisecond
	rawBackoff      = 100 * time.Millisecond
	rawMaxFailures  = 20
	batchHeaderSize = 61 // a v2 record batch without records
)

// runRaw measures the broker's fetch path without client-side decoding:
// Fetch requests are built here and the record batches in the responses
// are only walked, never decompressed or parsed.
func runRaw(ctx context.Context, o *options, rn *run) (outcome, error) {
	clients, err := newClients(ctx, o)
	if err != nil {
		return outcome{}, err
	}
	defer closeAll(clients)
	adm := kadm.NewClient(clients[0])
	info, err := describeTopic(ctx, adm, o, false)
	if err != nil {
		return outcome{}, err
	}
	offsets, err := listOffsets(ctx, adm, o, o.from == "latest")
	if err != nil {
		return outcome{}, err
	}
	var fetchers []*fetcher
	defer func() {
		for _, f := range fetchers {
			f.conn.close()
		}
	}()
	for _, share := range split(info.partitions, o.clients) {
		byLeader := map[int32]*fetcher{}
		for _, p := range share {
			leader := info.leaders[p]
			f := byLeader[leader]
			if f == nil {
				conn, err := dialWire(ctx, info.addrs[leader], o.timeout)
				if err != nil {
					return outcome{}, err
				}
				f = &fetcher{conn: conn, leader: leader, o: o}
				byLeader[leader] = f
				fetchers = append(fetchers, f)
			}
			f.parts = append(f.parts, &rawPartition{id: p, offset: offsets[p]})
		}
	}

	m := rn.begin(o, false)
	wctx, cancel := window(ctx, o, m)
	defer cancel()
	var wg sync.WaitGroup
	for _, f := range fetchers {
		wg.Go(func() { f.run(wctx, m) })
	}
	wg.Wait()
	return m.outcome(len(info.partitions), rn.end()), nil
}

type rawPartition struct {
	id       int32
	offset   int64
	failures int
}

// fetcher fetches the partitions one client reads from one leader, over
// a connection of its own.
type fetcher struct {
	conn   *wireConn
	leader int32
	o      *options
	parts  []*rawPartition
}

func (f *fetcher) run(wctx context.Context, m *meter) {
	failures := 0
	for wctx.Err() == nil && len(f.parts) > 0 {
		resp, err := f.conn.fetch(f.request(), time.Now().Add(rawMaxWait+f.o.timeout))
		now := time.Now()
		if err == nil && resp.ErrorCode != 0 {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		if err != nil {
			if wctx.Err() != nil {
				return
			}
			if m.measuring(now) {
				m.fail(1, fmt.Errorf("fetch from broker %d: %w", f.leader, err))
			}
			if failures++; failures >= rawMaxFailures {
				return
			}
			sleep(wctx, rawBackoff)
			continue
		}
		failures = 0
		records, bytes, errs := f.absorb(resp)
		if m.measuring(now) {
			if records > 0 {
				m.add(now, records, bytes)
			}
			for _, err := range errs {
				m.fail(1, err)
			}
		}
		if len(errs) > 0 {
			sleep(wctx, rawBackoff)
		}
	}
}

func (f *fetcher) request() *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis = int32(rawMaxWait / time.Millisecond)
	req.MinBytes = 1
	req.MaxBytes = int32(min(f.o.fetchMaxBytes, 1<<31-1))
	t := kmsg.NewFetchRequestTopic()
	t.Topic = f.o.topic
	for _, p := range f.parts {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = p.id
		rp.FetchOffset = p.offset
		rp.PartitionMaxBytes = int32(min(f.o.partitionMaxBytes, 1<<31-1))
		t.Partitions = append(t.Partitions, rp)
	}
	req.Topics = []kmsg.FetchRequestTopic{t}
	return req
}

// absorb counts the complete record batches of a response and moves each
// partition's fetch offset past them. A partition that keeps failing, or
// fails for good, is dropped.
func (f *fetcher) absorb(resp *kmsg.FetchResponse) (records, bytes int64, errs []error) {
	byID := make(map[int32]*rawPartition, len(f.parts))
	for _, p := range f.parts {
		byID[p.id] = p
	}
	drop := map[int32]bool{}
	for _, t := range resp.Topics {
		for _, rp := range t.Partitions {
			p := byID[rp.Partition]
			if p == nil {
				continue
			}
			err := kerr.ErrorForCode(rp.ErrorCode)
			var n, b, next int64
			if err == nil {
				n, b, next, err = walkBatches(rp.RecordBatches)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("fetch of %s partition %d at offset %d: %w", f.o.topic, p.id, p.offset, err))
				if p.failures++; p.failures >= rawMaxFailures || !kerr.IsRetriable(err) {
					drop[p.id] = true
				}
				continue
			}
			p.failures = 0
			if n > 0 {
				p.offset = next
				records += n
				bytes += b
			}
		}
	}
	if len(drop) > 0 {
		kept := f.parts[:0]
		for _, p := range f.parts {
			if !drop[p.id] {
				kept = append(kept, p)
			}
		}
		f.parts = kept
	}
	return records, bytes, errs
}

var errBadBatch = errors.New("malformed record batch")

// walkBatches counts the complete v2 record batches at the start of b
// without decoding them, using only the header fields every batch has:
// baseOffset (int64 at 0), batchLength (int32 at 8, the bytes after it),
// magic (int8 at 16) and lastOffsetDelta (int32 at 23). A partial batch at
// the end (cut by the fetch's byte limits) is left for the next fetch. next
// is the offset after the last complete batch.
func walkBatches(b []byte) (records, bytes, next int64, err error) {
	for len(b) >= 12 {
		base := int64(binary.BigEndian.Uint64(b[0:]))
		length := int64(int32(binary.BigEndian.Uint32(b[8:])))
		if length < batchHeaderSize-12 {
			return records, bytes, next, fmt.Errorf("%w at offset %d: length %d", errBadBatch, base, length)
		}
		size := 12 + length
		if size > int64(len(b)) {
			break
		}
		if magic := b[16]; magic != 2 {
			return records, bytes, next, fmt.Errorf("%w at offset %d: magic %d, only v2 batches are supported", errBadBatch, base, magic)
		}
		lastDelta := int64(int32(binary.BigEndian.Uint32(b[23:])))
		if lastDelta < 0 {
			return records, bytes, next, fmt.Errorf("%w at offset %d: last offset delta %d", errBadBatch, base, lastDelta)
		}
		records += lastDelta + 1
		bytes += size
		next = base + lastDelta + 1
		b = b[size:]
	}
	return records, bytes, next, nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
