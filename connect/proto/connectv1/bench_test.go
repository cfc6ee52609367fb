package connectv1_test

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/proto/connectv1"
)

// BenchmarkSourceRecordWire is one typical log record's full trip:
// encode in the plugin, marshal, unmarshal and decode in the host.
func BenchmarkSourceRecordWire(b *testing.B) {
	r := &data.Record{Topic: "logs", Partition: -1, Timestamp: -1,
		Value:           []byte("a log line of a typical length, about one hundred bytes of text, give or take a few......"),
		SourcePartition: map[string]any{"file": "/var/log/syslog"}, SourceOffset: map[string]any{"pos": int64(123456789)}}
	b.ReportAllocs()
	for b.Loop() {
		p, err := connectv1.SourceRecordToProto(r)
		if err != nil {
			b.Fatal(err)
		}
		buf, err := proto.Marshal(p)
		if err != nil {
			b.Fatal(err)
		}
		var q connectv1.SourceRecord
		if err := proto.Unmarshal(buf, &q); err != nil {
			b.Fatal(err)
		}
		if _, err := connectv1.SourceRecordFromProto(&q); err != nil {
			b.Fatal(err)
		}
	}
}
