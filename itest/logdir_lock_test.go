package itest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// runFailingBroker runs `sluice broker` on dataDir expecting it to exit by
// itself (it must not start); it returns the exit code and stderr.
func runFailingBroker(t *testing.T, engine, dataDir string, sets ...string) (int, string) {
	t.Helper()
	args := append([]string{"broker"}, engineArgs(engine)...)
	args = append(args,
		"--set", "listeners=PLAINTEXT://127.0.0.1:0",
		"--set", "admin.listener=127.0.0.1:0",
		"--set", "log.dirs="+dataDir,
	)
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sluiceBin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("the broker did not exit: it started where it must not\n%s", stderr.String())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), stderr.String()
}

// touchedSince lists the files under dir (but the lock file) and the ones
// among them created, written or renamed after since: a broker that fails
// to start must leave the second list empty.
func touchedSince(t *testing.T, dir string, since time.Time) (all, touched []string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == ".lock" {
			return err
		}
		info, err := d.Info()
		if err == nil {
			all = append(all, path)
			if !info.ModTime().Before(since) {
				touched = append(touched, path)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return all, touched
}

// untouched checks that the files under dir are the ones listed in before
// and none changed since.
func untouched(t *testing.T, dir string, before []string, since time.Time) {
	t.Helper()
	after, touched := touchedSince(t, dir, since)
	if len(touched) > 0 || !slices.Equal(before, after) {
		t.Fatalf("a failed start wrote into %s: changed %v; files before %v, after %v", dir, touched, before, after)
	}
}

// A second broker on a log dir in use exits non-zero before reading it,
// naming the directory and the first broker's pid; the first keeps every
// acknowledged record. Without the lock both brokers appended to the same
// segments and records were lost.
func TestSecondBrokerOnALogDirExits(t *testing.T) {
	engines.Run(t, func(t *testing.T, engine string) {
		dir := t.TempDir()
		first := startBroker(t, engine, dir)
		createTopic(t, first.Addr(), "shared", 2, nil)
		cl := newClient(t, first.Addr())
		for i := 0; i < 100; i++ {
			produceSync(t, cl, &kgo.Record{Topic: "shared", Value: []byte(itoa(i))})
		}
		before, _ := touchedSince(t, dir, time.Now())
		since := time.Now()
		code, stderr := runFailingBroker(t, engine, dir)
		want := fmt.Sprintf("Failed to acquire lock on file .lock in %s. Process %d", dir, first.Pid())
		if code == 0 || !strings.Contains(stderr, want) {
			t.Fatalf("second broker: exit %d, stderr does not say %q:\n%s", code, want, stderr)
		}
		untouched(t, dir, before, since)

		for i := 100; i < 200; i++ {
			produceSync(t, cl, &kgo.Record{Topic: "shared", Value: []byte(itoa(i))})
		}
		cl.Close()
		first.Stop()
		again := startBroker(t, engine, dir)
		if got := len(consumeAll(t, again.Addr(), "shared")); got != 200 {
			t.Fatalf("%d of 200 acknowledged records after a restart", got)
		}
	})
}

// A broker whose Kafka port is taken exits non-zero and writes nothing into
// its log dir: no marker taken or rewritten, no index, snapshot or
// checkpoint touched.
func TestBrokerOnABusyPortWritesNothing(t *testing.T) {
	engines.Run(t, func(t *testing.T, engine string) {
		dir := t.TempDir()
		b := startBroker(t, engine, dir)
		createTopic(t, b.Addr(), "calm", 2, nil)
		cl := newClient(t, b.Addr())
		for i := 0; i < 50; i++ {
			produceSync(t, cl, &kgo.Record{Topic: "calm", Value: []byte(itoa(i))})
		}
		cl.Close()
		b.Stop()
		busy, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer busy.Close()
		before, _ := touchedSince(t, dir, time.Now())
		since := time.Now()
		code, stderr := runFailingBroker(t, engine, dir, "listeners=PLAINTEXT://"+busy.Addr().String())
		if code == 0 || !strings.Contains(stderr, "address already in use") {
			t.Fatalf("exit %d:\n%s", code, stderr)
		}
		untouched(t, dir, before, since)
	})
}
