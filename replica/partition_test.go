package replica

import (
	"errors"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/sluice-io/sluice/segment"
)

var testNow = time.UnixMilli(1_700_000_000_000)

func testConfig() Config {
	return Config{
		Log: segment.Config{
			SegmentBytes:       1 << 20,
			IndexIntervalBytes: 4096,
			RetentionBytes:     -1,
			RetentionMs:        -1,
		},
		MaxMessageBytes: 1 << 20,
	}
}

func openPartition(t *testing.T, fs segment.FS, epoch int32, cfg Config) *Partition {
	t.Helper()
	p, err := Open(fs, testDir, "t", 0, epoch, cfg, func() time.Time { return testNow }, testLogger())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return p
}

func mustAppend(t *testing.T, p *Partition, batches ...[]byte) AppendResult {
	t.Helper()
	var buf []byte
	for _, b := range batches {
		buf = append(buf, b...)
	}
	res, err := p.Append(buf)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return res
}

// readBatches returns the headers of the batches Read returns from offset.
func readBatches(t *testing.T, p *Partition, offset int64) []segment.BatchHeader {
	t.Helper()
	res, err := p.Read(offset, 1<<20, true)
	if err != nil {
		t.Fatalf("Read(%d): %v", offset, err)
	}
	defer res.Release()
	var data []byte
	for _, r := range res.Ranges {
		b := make([]byte, r.Length)
		if _, err := r.File.ReadAt(b, r.Offset); err != nil {
			t.Fatalf("read range: %v", err)
		}
		data = append(data, b...)
	}
	if int64(len(data)) != res.Bytes {
		t.Fatalf("ranges hold %d bytes, Bytes = %d", len(data), res.Bytes)
	}
	if len(data) == 0 {
		return nil
	}
	hs, err := segment.ValidateBatches(data, 0)
	if err != nil {
		t.Fatalf("read back invalid batches: %v", err)
	}
	return hs
}

func idem(pid int64, epoch int16, seq int32, n int) batchOpts {
	return batchOpts{pid: pid, epoch: epoch, seq: seq, n: n, ts: testNow.UnixMilli() - 1000, valueLen: 8}
}

func plain(n int) batchOpts {
	return batchOpts{pid: -1, n: n, ts: testNow.UnixMilli() - 1000, valueLen: 8}
}

func TestPartitionAppendRead(t *testing.T) {
	fs := segment.NewMemFS()
	p := openPartition(t, fs, 0, testConfig())
	defer p.Close()

	r1 := mustAppend(t, p, makeBatch(t, plain(3)))
	r2 := mustAppend(t, p, makeBatch(t, plain(2)), makeBatch(t, idem(1, 0, 0, 4)))
	if r1.BaseOffset != 0 || r1.LastOffset != 2 || r2.BaseOffset != 3 || r2.LastOffset != 8 {
		t.Fatalf("offsets %+v %+v", r1, r2)
	}
	if r1.LogAppendTime != -1 || r1.Duplicate || r2.LogStartOffset != 0 {
		t.Fatalf("result %+v", r1)
	}
	if p.LogEndOffset() != 9 || p.HighWatermark() != 9 || p.LastStableOffset() != 9 || p.LogStartOffset() != 0 {
		t.Fatalf("LEO %d HW %d LSO %d start %d", p.LogEndOffset(), p.HighWatermark(), p.LastStableOffset(), p.LogStartOffset())
	}
	hs := readBatches(t, p, 0)
	if len(hs) != 3 || hs[0].BaseOffset != 0 || hs[1].BaseOffset != 3 || hs[2].BaseOffset != 5 {
		t.Fatalf("read back %+v", hs)
	}
	for _, h := range hs {
		if h.PartitionLeaderEpoch != 0 {
			t.Fatalf("batch at %d has leader epoch %d", h.BaseOffset, h.PartitionLeaderEpoch)
		}
	}
	if hs := readBatches(t, p, 4); len(hs) != 2 || hs[0].BaseOffset != 3 {
		t.Fatalf("read from 4: %+v", hs)
	}
	if hs := readBatches(t, p, 9); len(hs) != 0 {
		t.Fatalf("read at HW returned %d batches", len(hs))
	}
	if _, err := p.Read(10, 1<<20, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read past LEO: %v", err)
	}
	if off, ts := p.MaxTimestamp(); off < 0 || ts != testNow.UnixMilli()-1000+3 {
		t.Fatalf("MaxTimestamp = %d, %d", off, ts)
	}
	if off, _, ok := p.FindOffsetByTimestamp(testNow.UnixMilli() - 1000); !ok || off != 0 {
		t.Fatalf("FindOffsetByTimestamp = %d, %v", off, ok)
	}
}

func TestPartitionRejectsInvalidWithoutWriting(t *testing.T) {
	fs := segment.NewMemFS()
	cfg := testConfig()
	cfg.MaxMessageBytes = 500
	p := openPartition(t, fs, 0, cfg)
	defer p.Close()
	mustAppend(t, p, makeBatch(t, idem(1, 0, 0, 1)))
	size := p.Size()

	bad := makeBatch(t, plain(1))
	bad[len(bad)-1] ^= 1 // CRC no longer matches
	big := makeBatch(t, batchOpts{pid: -1, n: 1, valueLen: 600})
	control := makeBatch(t, batchOpts{pid: 1, epoch: 0, seq: 1, n: 1, attrs: 1 << 5})
	cases := []struct {
		name string
		buf  []byte
		want error
	}{
		{"corrupt second batch", append(makeBatch(t, plain(1)), bad...), segment.ErrCorruptBatch},
		{"too large", big, segment.ErrBatchTooLarge},
		{"control batch", control, segment.ErrInvalidRecord},
		{"sequence gap", makeBatch(t, idem(1, 0, 2, 1)), ErrOutOfOrderSequence},
		{"gap in second batch", append(makeBatch(t, idem(1, 0, 1, 1)), makeBatch(t, idem(1, 0, 3, 1))...), ErrOutOfOrderSequence},
	}
	for _, tc := range cases {
		if _, err := p.Append(tc.buf); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
		if p.LogEndOffset() != 1 || p.Size() != size {
			t.Fatalf("%s: wrote something (LEO %d, size %d -> %d)", tc.name, p.LogEndOffset(), size, p.Size())
		}
	}
	// Fencing: producer 1 moves to epoch 1; epoch 0 is then rejected.
	mustAppend(t, p, makeBatch(t, idem(1, 1, 0, 1)))
	if _, err := p.Append(makeBatch(t, idem(1, 0, 1, 1))); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("old producer epoch: %v", err)
	}
	if p.LogEndOffset() != 2 {
		t.Fatalf("LEO %d", p.LogEndOffset())
	}
}

func TestPartitionDuplicateRetry(t *testing.T) {
	fs := segment.NewMemFS()
	p := openPartition(t, fs, 0, testConfig())
	defer p.Close()
	mustAppend(t, p, makeBatch(t, plain(2)))
	orig := mustAppend(t, p, makeBatch(t, idem(42, 0, 0, 3)))
	mustAppend(t, p, makeBatch(t, idem(42, 0, 3, 1)))
	leo, size := p.LogEndOffset(), p.Size()

	// The client did not get the first response and retries the same batch.
	retry := mustAppend(t, p, makeBatch(t, idem(42, 0, 0, 3)))
	if !retry.Duplicate || retry.BaseOffset != orig.BaseOffset || retry.LastOffset != orig.LastOffset {
		t.Fatalf("retry = %+v, original %+v", retry, orig)
	}
	if p.LogEndOffset() != leo || p.Size() != size {
		t.Fatal("duplicate was written")
	}
}

func TestPartitionLogAppendTime(t *testing.T) {
	fs := segment.NewMemFS()
	cfg := testConfig()
	cfg.LogAppendTime = true
	p := openPartition(t, fs, 0, cfg)
	defer p.Close()
	res := mustAppend(t, p, makeBatch(t, idem(1, 0, 0, 2)))
	if res.LogAppendTime != testNow.UnixMilli() {
		t.Fatalf("LogAppendTime = %d", res.LogAppendTime)
	}
	hs := readBatches(t, p, 0)
	if len(hs) != 1 || hs[0].MaxTimestamp != testNow.UnixMilli() || !hs[0].LogAppendTime() {
		t.Fatalf("stored header %+v", hs)
	}
	dup := mustAppend(t, p, makeBatch(t, idem(1, 0, 0, 2)))
	if !dup.Duplicate || dup.LogAppendTime != testNow.UnixMilli() {
		t.Fatalf("duplicate result %+v", dup)
	}
}

func TestPartitionDuplicateAfterReopen(t *testing.T) {
	fs := segment.NewMemFS()
	p := openPartition(t, fs, 0, testConfig())
	orig := mustAppend(t, p, makeBatch(t, idem(7, 0, 0, 2)))
	mustAppend(t, p, makeBatch(t, idem(8, 0, 0, 1)))
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if got := snapshotFiles(t, fs); len(got) != 1 || got[0] != SnapshotName(3) {
		t.Fatalf("snapshots after Close = %v", got)
	}

	p = openPartition(t, fs, 0, testConfig())
	defer p.Close()
	retry := mustAppend(t, p, makeBatch(t, idem(7, 0, 0, 2)))
	if !retry.Duplicate || retry.BaseOffset != orig.BaseOffset {
		t.Fatalf("retry after reopen = %+v", retry)
	}
	if _, err := p.Append(makeBatch(t, idem(8, 0, 5, 1))); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("gap after reopen: %v", err)
	}
	mustAppend(t, p, makeBatch(t, idem(8, 0, 1, 1)))
}

func TestPartitionDuplicateAfterCrash(t *testing.T) {
	fs := segment.NewMemFS()
	cfg := testConfig()
	cfg.Log.FlushIntervalMessages = 1 // every append is durable, snapshots are not written
	p := openPartition(t, fs, 0, cfg)
	first := mustAppend(t, p, makeBatch(t, idem(7, 0, 0, 2)))
	if err := p.Flush(); err != nil { // snapshot at 2
		t.Fatal(err)
	}
	second := mustAppend(t, p, makeBatch(t, idem(7, 0, 2, 2)))
	third := mustAppend(t, p, makeBatch(t, idem(9, 3, 0, 1)))
	fs.Crash() // no Close: state after offset 2 must come from the log

	p2 := openPartition(t, fs, 0, cfg)
	defer p2.Close()
	if p2.LogEndOffset() != 5 {
		t.Fatalf("LEO after crash = %d", p2.LogEndOffset())
	}
	for _, tc := range []struct {
		o    batchOpts
		want AppendResult
	}{
		{idem(7, 0, 0, 2), first},
		{idem(7, 0, 2, 2), second},
		{idem(9, 3, 0, 1), third},
	} {
		r := mustAppend(t, p2, makeBatch(t, tc.o))
		if !r.Duplicate || r.BaseOffset != tc.want.BaseOffset || r.LastOffset != tc.want.LastOffset {
			t.Fatalf("retry %+v after crash = %+v, want %+v", tc.o, r, tc.want)
		}
	}
	if p2.LogEndOffset() != 5 {
		t.Fatal("a duplicate was written")
	}
}

func TestPartitionDuplicateAfterCrashNoSnapshot(t *testing.T) {
	fs := segment.NewMemFS()
	cfg := testConfig()
	cfg.Log.FlushIntervalMessages = 1
	p := openPartition(t, fs, 0, cfg)
	orig := mustAppend(t, p, makeBatch(t, idem(7, 0, 0, 2)))
	fs.Crash()
	if got := snapshotFiles(t, fs); len(got) != 0 {
		t.Fatalf("unexpected snapshots %v", got)
	}
	p2 := openPartition(t, fs, 0, cfg)
	defer p2.Close()
	r := mustAppend(t, p2, makeBatch(t, idem(7, 0, 0, 2)))
	if !r.Duplicate || r.BaseOffset != orig.BaseOffset {
		t.Fatalf("retry = %+v", r)
	}
}

func TestPartitionEpochs(t *testing.T) {
	fs := segment.NewMemFS()
	p := openPartition(t, fs, 0, testConfig())
	if len(p.EpochEntries()) != 0 {
		t.Fatal("entry before the first append")
	}
	mustAppend(t, p, makeBatch(t, plain(3)))
	mustAppend(t, p, makeBatch(t, plain(1)))
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopening at the same epoch adds nothing; a new epoch adds an entry
	// at the LEO on its first append only.
	p = openPartition(t, fs, 0, testConfig())
	mustAppend(t, p, makeBatch(t, plain(1)))
	p.Close()
	p = openPartition(t, fs, 3, testConfig())
	if got := p.EpochEntries(); !reflect.DeepEqual(got, []EpochEntry{{0, 0}}) {
		t.Fatalf("entries before append in epoch 3: %v", got)
	}
	mustAppend(t, p, makeBatch(t, plain(2)))
	mustAppend(t, p, makeBatch(t, plain(2)))
	want := []EpochEntry{{0, 0}, {3, 5}}
	if got := p.EpochEntries(); !reflect.DeepEqual(got, want) {
		t.Fatalf("entries = %v, want %v", got, want)
	}
	if hs := readBatches(t, p, 5); hs[0].PartitionLeaderEpoch != 3 {
		t.Fatalf("batch epoch %d", hs[0].PartitionLeaderEpoch)
	}
	p.Close()

	p = openPartition(t, fs, 3, testConfig())
	defer p.Close()
	if got := p.EpochEntries(); !reflect.DeepEqual(got, want) {
		t.Fatalf("entries after reopen = %v, want %v", got, want)
	}
	for _, tc := range []struct {
		req   int32
		epoch int32
		end   int64
	}{{0, 0, 5}, {1, 0, 5}, {3, 3, 9}, {4, -1, -1}, {-1, -1, -1}} {
		if e, o := p.OffsetForLeaderEpoch(tc.req); e != tc.epoch || o != tc.end {
			t.Errorf("OffsetForLeaderEpoch(%d) = (%d, %d), want (%d, %d)", tc.req, e, o, tc.epoch, tc.end)
		}
	}
	if p.LeaderEpoch() != 3 {
		t.Fatalf("LeaderEpoch = %d", p.LeaderEpoch())
	}
	if _, err := Open(fs, testDir, "t", 0, 2, testConfig(), nil, testLogger()); !errors.Is(err, ErrStaleLeaderEpoch) {
		t.Fatalf("open with an older epoch: %v", err)
	}
}

func TestPartitionEpochCrashAndRebuild(t *testing.T) {
	fs := segment.NewMemFS()
	cfg := testConfig()
	p := openPartition(t, fs, 1, cfg)
	mustAppend(t, p, makeBatch(t, plain(2)))
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	p.Close()
	p = openPartition(t, fs, 2, cfg)
	// The epoch-2 entry is durable before the batch; the batch is not
	// flushed, so the crash loses it and the entry must go too.
	mustAppend(t, p, makeBatch(t, plain(2)))
	fs.Crash()
	p = openPartition(t, fs, 2, cfg)
	if got := p.EpochEntries(); !reflect.DeepEqual(got, []EpochEntry{{1, 0}}) {
		t.Fatalf("entries after crash = %v", got)
	}
	mustAppend(t, p, makeBatch(t, plain(2)))
	p.Close()

	// A lost checkpoint is rebuilt from the epochs stamped in the batches.
	if err := fs.Remove(filepath.Join(testDir, EpochCheckpointFile)); err != nil {
		t.Fatal(err)
	}
	p = openPartition(t, fs, 2, cfg)
	if got := p.EpochEntries(); !reflect.DeepEqual(got, []EpochEntry{{1, 0}, {2, 2}}) {
		t.Fatalf("rebuilt entries = %v", got)
	}
	p.Close()

	// So is a corrupt one.
	writeFile(t, fs, filepath.Join(testDir, EpochCheckpointFile), []byte("0\n7\n"))
	p = openPartition(t, fs, 2, cfg)
	defer p.Close()
	if got := p.EpochEntries(); !reflect.DeepEqual(got, []EpochEntry{{1, 0}, {2, 2}}) {
		t.Fatalf("entries rebuilt from corrupt checkpoint = %v", got)
	}
	if e, o := p.OffsetForLeaderEpoch(1); e != 1 || o != 2 {
		t.Fatalf("OffsetForLeaderEpoch(1) = (%d, %d)", e, o)
	}
}

func TestPartitionChanged(t *testing.T) {
	fs := segment.NewMemFS()
	p := openPartition(t, fs, 0, testConfig())
	ch := p.Changed()
	select {
	case <-ch:
		t.Fatal("Changed fired without an append")
	default:
	}
	done := make(chan int64)
	go func() {
		<-ch
		done <- p.HighWatermark()
	}()
	mustAppend(t, p, makeBatch(t, plain(2)))
	select {
	case hw := <-done:
		if hw != 2 {
			t.Fatalf("woken with HW %d", hw)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiter not woken")
	}
	ch2 := p.Changed()
	select {
	case <-ch2:
		t.Fatal("new channel already closed")
	default:
	}
	// A rejected append does not wake anyone.
	if _, err := p.Append([]byte{1, 2, 3}); err == nil {
		t.Fatal("garbage accepted")
	}
	select {
	case <-ch2:
		t.Fatal("Changed fired on a failed append")
	default:
	}
	p.Close()
	<-ch2
	<-p.Changed()
	if _, err := p.Append(makeBatch(t, plain(1))); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
}

func TestPartitionConcurrentAppendRead(t *testing.T) {
	fs := segment.NewMemFS()
	p := openPartition(t, fs, 0, testConfig())
	defer p.Close()
	const producers, perProducer = 4, 50
	var wg sync.WaitGroup
	for w := 0; w < producers; w++ {
		wg.Add(1)
		go func(pid int64) {
			defer wg.Done()
			for i := 0; i < perProducer; i++ {
				if _, err := p.Append(makeBatch(t, idem(pid, 0, int32(i), 1))); err != nil {
					t.Errorf("append: %v", err)
					return
				}
			}
		}(int64(w))
	}
	stop := make(chan struct{})
	var rwg sync.WaitGroup
	rwg.Add(2)
	go func() { // background flusher and producer expiry, as the broker runs them
		defer rwg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := p.Flush(); err != nil {
				t.Errorf("flush: %v", err)
				return
			}
			p.ExpireProducers()
			time.Sleep(time.Millisecond)
		}
	}()
	go func() {
		defer rwg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			res, err := p.Read(0, 1<<16, true)
			if err != nil {
				t.Errorf("read: %v", err)
				return
			}
			res.Release()
			_ = p.HighWatermark()
			select { // a long-poll: wait for the next HW advance
			case <-p.Changed():
			case <-stop:
				return
			}
		}
	}()
	wg.Wait()
	close(stop)
	rwg.Wait()
	if p.LogEndOffset() != producers*perProducer {
		t.Fatalf("LEO = %d", p.LogEndOffset())
	}
}
