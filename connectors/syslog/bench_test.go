package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/proto/connectv1"
	"github.com/sluice-io/sluice/connect/sdk"
	"google.golang.org/protobuf/proto"
)

func benchStream(n int) []byte {
	var b []byte
	for i := 0; i < n; i++ {
		m := fmt.Sprintf(`<165>1 2026-12-05T01:02:03.%03dZ web-%02d nginx 4242 ACCESS [req@32473 id="%d" zone="eu-west-1"] GET /api/v1/items/%d 200 1532 "curl/8.5" xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx`, i%1000, i%16, i, i)
		b = fmt.Appendf(b, "%d %s", len(m), m)
	}
	return b
}

func BenchmarkFrameParseRecord(b *testing.B) {
	b.Run("map", func(b *testing.B) { benchFrameParse(b, formatMap) })
	b.Run("json", func(b *testing.B) { benchFrameParse(b, formatJSON) })
}

func benchFrameParse(b *testing.B, format valueFormat) {
	stream := benchStream(1000)
	tk := &task{cfg: config{topic: "t", maxBytes: 65536}}
	l := &listener{partition: map[string]any{listenerKey: "tcp://x"}}
	p := newParser(time.UTC, keyNone, format, false)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += 1000 {
		f := newFramer(65536)
		f.push(stream)
		for {
			fr, ok := f.next()
			if !ok {
				break
			}
			res := p.parse(fr.data, false, "127.0.0.1:1", time.Now())
			_ = tk.record(l, res, time.Now())
		}
	}
}

func BenchmarkParseOnly(b *testing.B) {
	p := newParser(time.UTC, keyNone, formatMap, false)
	m := []byte(`<165>1 2026-12-05T01:02:03.004Z web-01 nginx 4242 ACCESS [req@32473 id="5" zone="eu-west-1"] GET /api/v1/items/5 200 1532 "curl/8.5" xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx`)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_, _ = p.m.Parse(m)
	}
}

func BenchmarkSDKEncodePackedJSON(b *testing.B) {
	p := newParser(time.UTC, keyNone, formatJSON, false)
	tk := &task{cfg: config{topic: "t", maxBytes: 65536}}
	l := &listener{partition: map[string]any{listenerKey: "tcp://x"}}
	m := []byte(`<165>1 2026-12-05T01:02:03.004Z web-01 nginx 4242 ACCESS [req@32473 id="5" zone="eu-west-1"] GET /api/v1/items/5 200 1532 "curl/8.5" xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx`)
	recs := make([]*data.Record, 1000)
	for i := range recs {
		recs[i] = tk.record(l, p.parse(m, false, "127.0.0.1:1", time.Now()), time.Now())
	}
	b.ReportAllocs()
	var buf []byte
	for i := 0; i < b.N; i += len(recs) {
		var err error
		if buf, err = connectv1.AppendPacked(buf[:0], recs); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSDKEncode(b *testing.B) {
	p := newParser(time.UTC, keyNone, formatMap, false)
	tk := &task{cfg: config{topic: "t", maxBytes: 65536}}
	l := &listener{partition: map[string]any{listenerKey: "tcp://x"}}
	m := []byte(`<165>1 2026-12-05T01:02:03.004Z web-01 nginx 4242 ACCESS [req@32473 id="5" zone="eu-west-1"] GET /api/v1/items/5 200 1532 "curl/8.5" xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx`)
	r := tk.record(l, p.parse(m, false, "127.0.0.1:1", time.Now()), time.Now())
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		pb, err := connectv1.SourceRecordBodyToProto(r)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := proto.Marshal(pb); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTaskTCP runs the task as the plugin does: one TCP sender, Poll
// in a loop, each batch packed as the SDK packs it.
func BenchmarkTaskTCP(b *testing.B) {
	port := freePortB(b)
	tk := connector{}.NewTask().(*task)
	cfg := map[string]string{kListener: "TCP", kPort: strconv.Itoa(port), kAddress: "127.0.0.1", kTopic: "t", kValueFormat: "json"}
	if err := tk.Start(context.Background(), sdk.TaskContext{Logger: slog.New(slog.DiscardHandler)}, cfg, nil); err != nil {
		b.Fatal(err)
	}
	defer tk.Stop(context.Background())
	stream := benchStream(1000)
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ResetTimer()
	go func() {
		for i := 0; i < b.N; i += 1000 {
			if _, err := c.Write(stream); err != nil {
				return
			}
		}
	}()
	var buf []byte
	for got := 0; got < b.N/1000*1000; {
		recs, err := tk.Poll(context.Background(), sdk.PollLimits{MaxRecords: 2000})
		if err != nil {
			b.Fatal(err)
		}
		if buf, err = connectv1.AppendPacked(buf[:0], recs); err != nil {
			b.Fatal(err)
		}
		got += len(recs)
	}
}

func freePortB(b *testing.B) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
