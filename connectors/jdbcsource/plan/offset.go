// Package plan is the I/O-free core of the JDBC-style query source: the
// SQL each poll of a table runs in each mode (bulk, incrementing,
// timestamp, timestamp+incrementing), how the offset advances over the
// rows a query returned, the offsets' wire shape (Confluent's
// TimestampIncrementingOffset, so offsets written by Kafka Connect's JDBC
// source resume here and back), and which table is due for a poll next.
// Time is passed in; nothing here touches a database or a clock.
package plan

import (
	"fmt"
	"math"
	"time"
)

// The offset and partition keys, as Confluent's JDBC source writes them.
const (
	IncrementingKey   = "incrementing"
	TimestampKey      = "timestamp"
	TimestampNanosKey = "timestamp_nanos"
	TableKey          = "table"
	QueryKey          = "query"
	ProtocolKey       = "protocol"
	// QueryPartitionValue is the value of the "query" key of a custom
	// query's source partition: Confluent uses this constant, not the
	// query text.
	QueryPartitionValue = "query"
)

// Offset is how far a table has been read: the last incrementing value
// and/or the last timestamp emitted. A zero Offset has read nothing.
type Offset struct {
	HasInc bool
	Inc    int64
	HasTS  bool
	TS     time.Time
}

// IsZero reports whether nothing has been read.
func (o Offset) IsZero() bool { return !o.HasInc && !o.HasTS }

// Map is the offset as Kafka Connect stores it:
// {"incrementing": N, "timestamp": epoch ms, "timestamp_nanos": nanos of
// the second}, the keys present being those the mode tracks (Java's
// Timestamp.getTime and getNanos, as Confluent's offset writes them).
// A zero Offset is nil.
func (o Offset) Map() map[string]any {
	if o.IsZero() {
		return nil
	}
	m := make(map[string]any, 3)
	if o.HasInc {
		m[IncrementingKey] = o.Inc
	}
	if o.HasTS {
		m[TimestampKey] = o.TS.UnixMilli()
		m[TimestampNanosKey] = int64(o.TS.Nanosecond())
	}
	return m
}

// OffsetFromMap reads an offset Map wrote (or Kafka Connect's JDBC source
// did); nil is the zero Offset. A timestamp without timestamp_nanos, as
// older Confluent versions wrote, is millisecond precise.
func OffsetFromMap(m map[string]any) (Offset, error) {
	var o Offset
	if v, ok := m[IncrementingKey]; ok && v != nil {
		n, err := asInt64(v)
		if err != nil {
			return o, fmt.Errorf("offset %q: %w", IncrementingKey, err)
		}
		o.HasInc, o.Inc = true, n
	}
	if v, ok := m[TimestampKey]; ok && v != nil {
		ms, err := asInt64(v)
		if err != nil {
			return o, fmt.Errorf("offset %q: %w", TimestampKey, err)
		}
		o.HasTS, o.TS = true, time.UnixMilli(ms).UTC()
		if nv, ok := m[TimestampNanosKey]; ok && nv != nil {
			ns, err := asInt64(nv)
			if err != nil || ns < 0 || ns > 999_999_999 {
				return o, fmt.Errorf("offset %q: %v is not nanoseconds of a second", TimestampNanosKey, nv)
			}
			// Java's Timestamp.setNanos replaces the fraction of the
			// second the millis carried.
			sec := floorDiv(ms, 1000)
			o.TS = time.Unix(sec, ns).UTC()
		}
	}
	return o, nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func asInt64(v any) (int64, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case int32:
		return int64(x), nil
	case int:
		return int64(x), nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), nil
		}
	}
	return 0, fmt.Errorf("%v (%T) is not an integer", v, v)
}
