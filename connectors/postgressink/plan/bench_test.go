package plan

import (
	"fmt"
	"testing"

	"github.com/sluice-io/sluice/connect/data"
)

// BenchmarkPlanUpsert plans batches of 500 schemaless records, as the
// benchmark's JSON records arrive: rows, then the grouped statements.
func BenchmarkPlanUpsert(b *testing.B) {
	c, _ := ParseConfig(map[string]string{"insert.mode": "upsert", "pk.mode": "record_key"})
	recs := make([]*data.Record, 500)
	for i := range recs {
		recs[i] = &data.Record{Topic: "t", OriginalTopic: "t", OriginalOffset: int64(i),
			Key:   map[string]any{"id": int64(i % 400)},
			Value: map[string]any{"id": int64(i % 400), "name": fmt.Sprint("item-", i), "qty": int64(i), "price": 1.5}}
	}
	b.ReportAllocs()
	for b.Loop() {
		rows := make([]Row, 0, len(recs))
		for i, r := range recs {
			row, _, err := c.RowOf(i, r)
			if err != nil {
				b.Fatal(err)
			}
			rows = append(rows, row)
		}
		c.Group(rows)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/row")
}
