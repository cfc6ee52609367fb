package broker

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-io/sluice/coordinator"
)

// untar unpacks testdata/name (a .tgz) into a new directory.
func untar(t *testing.T, name string) string {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return dir
		}
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, filepath.Clean(h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(path, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestStartsOnALogDirOfTheFirstMetadataFormat: testdata/v0-logdir.tgz is
// a log dir written and cleanly shut down by the broker before metadata
// records existed (topic "orders", 3 partitions of 5 records each, and
// __consumer_offsets). Today's broker starts on it, serves every record,
// registers itself and starts a new leader epoch, and starts again on what
// it wrote.
func TestStartsOnALogDirOfTheFirstMetadataFormat(t *testing.T) {
	dir := untar(t, "v0-logdir.tgz")
	for start := 1; start <= 2; start++ {
		tb := startTestBrokerIn(t, dir)
		img := tb.metaImage()
		if _, ok := img.Broker(tb.localID()); !ok {
			t.Fatalf("start %d: this broker is not registered", start)
		}
		orders, ok := img.Topic("orders")
		if !ok || len(orders.Partitions) != 3 {
			t.Fatalf("start %d: orders %+v", start, orders)
		}
		if off, ok := img.Topic(coordinator.OffsetsTopic); !ok || len(off.Partitions) == 0 {
			t.Fatalf("start %d: no %s", start, coordinator.OffsetsTopic)
		}
		for _, p := range orders.Partitions {
			// The fixture's run was the partition's first leadership
			// (epoch 0); each start since is one more.
			if p.Leader != tb.localID() || p.LeaderEpoch != int32(start) {
				t.Fatalf("start %d: partition %+v", start, p)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ends, err := tb.admin(t).ListEndOffsets(ctx, "orders")
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		for p := int32(0); p < 3; p++ {
			if o, _ := ends.Lookup("orders", p); o.Err != nil || o.Offset != 5 {
				t.Fatalf("start %d: orders-%d ends at %d (%v), want 5", start, p, o.Offset, o.Err)
			}
		}
		if err := tb.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}
