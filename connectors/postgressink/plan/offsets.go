package plan

import (
	"sort"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connectors/internal/pgjdbc"
)

// OffsetsTable is the default table holding each connector's next
// offset per topic partition, in the target database.
const OffsetsTable = "sluice_connect_offsets"

// TP is a topic partition, as the worker commits it (before any SMT).
type TP struct {
	Topic     string
	Partition int32
}

// Advance moves one partition's stored next offset from Expected (-1:
// no row yet) to Next, in the transaction that writes the rows before
// Next. Applying it fails when the stored value is not Expected, which
// means another task (a zombie after a rebalance or a crash) wrote
// meanwhile: the batch must be re-filtered against what is stored.
type Advance struct {
	TP
	Expected, Next int64
}

// Offsets is a task's knowledge of the next offsets stored in the
// database, the exactly-once bookkeeping: a record is written only if its
// offset is at or past its partition's stored next offset, and the
// offsets advance in the same transaction as the rows.
type Offsets struct {
	known map[TP]int64 // -1: no row stored
}

// NewOffsets returns empty bookkeeping.
func NewOffsets() *Offsets { return &Offsets{known: map[TP]int64{}} }

// Unknown lists the partitions of records whose stored offset has not
// been read yet, sorted.
func (o *Offsets) Unknown(recs []*data.Record) []TP {
	seen := map[TP]bool{}
	var out []TP
	for _, r := range recs {
		tp := tpOf(r)
		if _, ok := o.known[tp]; !ok && !seen[tp] {
			seen[tp] = true
			out = append(out, tp)
		}
	}
	sortTPs(out)
	return out
}

// Set records the stored next offset of a partition (-1: no row).
func (o *Offsets) Set(tp TP, next int64) { o.known[tp] = next }

// Forget drops a partition, which another task may write next.
func (o *Offsets) Forget(tp TP) { delete(o.known, tp) }

// Get returns the stored next offset of a partition and whether it is
// known (-1: no row).
func (o *Offsets) Get(tp TP) (int64, bool) {
	n, ok := o.known[tp]
	return n, ok
}

// Fresh returns the indexes of the records not yet in the database: those
// at or past their partition's stored next offset. Every partition must
// be known.
func (o *Offsets) Fresh(recs []*data.Record) []int {
	out := make([]int, 0, len(recs))
	for i, r := range recs {
		if r.OriginalOffset >= o.known[tpOf(r)] {
			out = append(out, i)
		}
	}
	return out
}

// Advances are the offset moves of a batch: each partition's next offset
// becomes one past its last record, sorted by partition so concurrent
// transactions lock rows in one order.
func (o *Offsets) Advances(recs []*data.Record) []Advance {
	next := map[TP]int64{}
	for _, r := range recs {
		tp := tpOf(r)
		if r.OriginalOffset+1 > next[tp] {
			next[tp] = r.OriginalOffset + 1
		}
	}
	out := make([]Advance, 0, len(next))
	for tp, n := range next {
		if exp := o.known[tp]; n > exp {
			out = append(out, Advance{TP: tp, Expected: exp, Next: n})
		}
	}
	sort.Slice(out, func(i, j int) bool { return lessTP(out[i].TP, out[j].TP) })
	return out
}

// Applied records that a batch's advances committed.
func (o *Offsets) Applied(adv []Advance) {
	for _, a := range adv {
		o.known[a.TP] = a.Next
	}
}

// Stored lists the known stored offsets among tps (the partitions with
// a row), for PreCommit and Open.
func (o *Offsets) Stored(tps []TP) []Advance {
	var out []Advance
	for _, tp := range tps {
		if n, ok := o.known[tp]; ok && n >= 0 {
			out = append(out, Advance{TP: tp, Expected: n, Next: n})
		}
	}
	return out
}

func tpOf(r *data.Record) TP {
	if r.OriginalTopic != "" {
		return TP{r.OriginalTopic, r.OriginalPartition}
	}
	return TP{r.Topic, r.Partition}
}

func sortTPs(tps []TP) { sort.Slice(tps, func(i, j int) bool { return lessTP(tps[i], tps[j]) }) }

func lessTP(a, b TP) bool {
	if a.Topic != b.Topic {
		return a.Topic < b.Topic
	}
	return a.Partition < b.Partition
}

// CreateOffsetsTable creates the offsets table if it is missing.
func CreateOffsetsTable(t pgjdbc.Table) string {
	return "CREATE TABLE IF NOT EXISTS " + t.Quoted() + ` (connector text NOT NULL, topic text NOT NULL,
  partition integer NOT NULL, next_offset bigint NOT NULL, PRIMARY KEY (connector, topic, partition))`
}

// LoadOffsets reads a connector's stored offsets: $1 connector, $2 topics,
// $3 partitions (parallel arrays).
func LoadOffsets(t pgjdbc.Table) string {
	return "SELECT o.topic, o.partition, o.next_offset FROM " + t.Quoted() +
		" AS o JOIN unnest($2::text[], $3::integer[]) AS w(topic, partition) USING (topic, partition) WHERE o.connector = $1"
}

// SetOffset stores an offset unconditionally ($1 connector, $2 topic, $3
// partition, $4 next offset): AlterOffsets.
func SetOffset(t pgjdbc.Table) string {
	return "INSERT INTO " + t.Quoted() + " (connector, topic, partition, next_offset) VALUES ($1, $2, $3, $4)" +
		" ON CONFLICT (connector, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset"
}

// DeleteOffset forgets a partition's offset ($1 connector, $2 topic, $3
// partition).
func DeleteOffset(t pgjdbc.Table) string {
	return "DELETE FROM " + t.Quoted() + " WHERE connector = $1 AND topic = $2 AND partition = $3"
}

// AdvanceSQL is the statement applying an Advance, with its arguments
// after $1 connector; it changes one row exactly when the stored offset
// is the expected one (a plain INSERT when no row is expected fails on a
// row written meanwhile).
func AdvanceSQL(t pgjdbc.Table, a Advance) (string, []any) {
	if a.Expected < 0 {
		return "INSERT INTO " + t.Quoted() + " (connector, topic, partition, next_offset) VALUES ($1, $2, $3, $4)",
			[]any{a.Topic, a.Partition, a.Next}
	}
	return "UPDATE " + t.Quoted() + " SET next_offset = $4 WHERE connector = $1 AND topic = $2 AND partition = $3 AND next_offset = $5",
		[]any{a.Topic, a.Partition, a.Next, a.Expected}
}
