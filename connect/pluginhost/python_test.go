package pluginhost_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-io/sluice/connect/pluginhost"
	"github.com/sluice-io/sluice/connect/proto/connectv1"
)

const python = "/usr/bin/python3" // Debian's, with python3-grpcio and python3-protobuf

// pythonPlugin puts connect/sdk/python/example_source.py and its freshly
// generated connect_pb2.py in a plugin.path directory. Without Debian's
// python grpc or protoc the test is skipped, except in CI (CI=true), where
// the plugin protocol must be proven in another language.
func pythonPlugin(t *testing.T) string {
	t.Helper()
	missing := func(what string, err error) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s: %v (CI must install protobuf-compiler python3-grpcio python3-protobuf)", what, err)
		}
		t.Skipf("%s: %v", what, err)
	}
	if out, err := exec.Command(python, "-c", "import grpc, google.protobuf").CombinedOutput(); err != nil {
		missing("python3 grpc", fmt.Errorf("%v: %s", err, out))
	}
	protoc, err := exec.LookPath("protoc")
	if err != nil {
		missing("protoc", err)
	}
	dir := t.TempDir()
	src, err := os.ReadFile("../sdk/python/example_source.py")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "example_source.py"), src, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(protoc, "--python_out="+dir, "-I", "../proto/connectv1", "connect.proto").CombinedOutput(); err != nil {
		t.Fatalf("protoc --python_out: %v\n%s", err, out)
	}
	return dir
}

func TestPythonSourcePlugin(t *testing.T) {
	dir := pythonPlugin(t)
	h, logs := newHost(t, pluginhost.Options{HealthInterval: 200 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pl := discoverOne(t, h, dir)
	_, d, ok := pluginhost.Find([]pluginhost.Plugin{pl}, "PySource")
	if !ok || d.GetClassName() != "example.PySource" || d.GetType() != connectv1.ConnectorType_CONNECTOR_TYPE_SOURCE {
		t.Fatalf("python plugin describes %v", pl.Connectors)
	}

	// The certificate made with the openssl command works as well as the
	// one from the cryptography package.
	if _, err := exec.LookPath("openssl"); err == nil {
		p, err := h.Launch(ctx, pl, "py-openssl", pluginhost.Limits{Env: []string{"EXAMPLE_CERT_TOOL=openssl"}})
		if err != nil {
			t.Fatalf("python plugin with an openssl-made certificate: %v", err)
		}
		if _, err := p.Describe(ctx); err != nil {
			t.Fatal(err)
		}
		_ = p.Close()
	}

	p, err := h.Launch(ctx, pl, "py", pluginhost.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	vals, err := p.Validate(ctx, "PySource", map[string]string{})
	if err != nil || len(vals) != 1 || len(vals[0].GetErrors()) != 1 {
		t.Fatalf("validate without topic: %v %v", vals, err)
	}
	src := p.SourceTask(pluginhost.TaskID{Task: 0, Generation: 3})
	committed := []connectv1.Position{{Partition: map[string]any{"source": "py"}, Offset: map[string]any{"n": int64(4)}}}
	if err := src.Start(ctx, "PySource", map[string]string{"topic": "pytopic", "count": "25"}, committed); err != nil {
		t.Fatal(err)
	}
	next := int64(5)
	for seq := uint64(1); next < 25; seq++ {
		// Odd batches ask for positions per batch, even ones per record.
		perBatch := seq%2 == 1
		b, err := src.Poll(ctx, pluginhost.PollLimits{MaxRecords: 8, MaxWait: 100 * time.Millisecond, BatchPositions: perBatch})
		if err != nil {
			t.Fatal(err)
		}
		if b.Seq != seq || len(b.Records) == 0 || len(b.Records) > 8 {
			t.Fatalf("batch %d of %d records, want seq %d", b.Seq, len(b.Records), seq)
		}
		for _, r := range b.Records {
			if r.Topic != "pytopic" || string(r.Value.([]byte)) != fmt.Sprintf("py-%d", next) {
				t.Fatalf("record %+v, want py-%d", r, next)
			}
			if hasPos := r.SourceOffset["n"] == next && r.SourcePartition["source"] == "py"; hasPos == perBatch {
				t.Fatalf("batch positions %v, record %+v has its position: %v", perBatch, r, hasPos)
			}
			next++
		}
		if len(b.Positions) != 1 || b.Positions[0].Key != `{"source":"py"}` || b.Positions[0].Offset["n"] != next-1 {
			t.Fatalf("batch positions %+v, want n=%d", b.Positions, next-1)
		}
		if err := src.Commit(ctx, b.Seq, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Exhausted: the long poll waits out max_wait and answers empty.
	b, err := src.Poll(ctx, pluginhost.PollLimits{MaxRecords: 8, MaxWait: 100 * time.Millisecond})
	if err != nil || len(b.Records) != 0 || b.Seq != 0 {
		t.Fatalf("exhausted poll: %+v %v", b, err)
	}
	if err := src.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// Health checks pass for a while.
	time.Sleep(700 * time.Millisecond)
	if err := p.Err(); err != nil {
		t.Fatalf("python plugin killed: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	assertGone(t, p.Pid())
	if !strings.Contains(logs.String(), "python plugin serving") {
		t.Fatalf("python plugin's stderr not in the host log:\n%s", logs.String())
	}
}
