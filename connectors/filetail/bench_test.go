package main

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-io/sluice/connect/proto/connectv1"
	"github.com/sluice-io/sluice/connect/sdk"
)

// BenchmarkPoll reads 200-byte lines through Poll and packs them as the
// SDK does for the worker: the plugin's share of the CPU per line.
func BenchmarkPoll(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "app.log")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	const lines = 200_000
	pad := strings.Repeat("x", 200)
	for i := range lines {
		head := fmt.Sprintf("2026-12-05T01:02:03.000Z INFO line %012d ", i)
		fmt.Fprintf(w, "%s%s\n", head, pad[:199-len(head)])
	}
	_ = w.Flush()
	_ = f.Close()
	b.SetBytes(lines * 200)
	b.ReportAllocs()
	for b.Loop() {
		tk := connector{}.NewTask().(*task)
		if err := tk.Start(context.Background(), sdk.TaskContext{Logger: slog.New(slog.DiscardHandler)},
			map[string]string{"topic": "t", "include": path}, nil); err != nil {
			b.Fatal(err)
		}
		n := 0
		var buf []byte
		for n < lines {
			recs, err := tk.Poll(context.Background(), sdk.PollLimits{MaxRecords: 10000, MaxBytes: 4 << 20, MaxWait: time.Second})
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range recs {
				if !connectv1.Packable(r) {
					b.Fatal("not packable")
				}
			}
			buf, _ = connectv1.AppendPacked(buf[:0], recs)
			n += len(recs)
		}
		_ = tk.Stop(context.Background())
	}
}
