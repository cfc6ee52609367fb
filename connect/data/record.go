package data

// Header is one record header with its schema (nil when schemaless).
type Header struct {
	Key    string
	Schema *Schema
	Value  any
}

// Record is a source or sink record: Kafka's ConnectRecord with the
// SourceRecord and SinkRecord extras. Partition -1 lets the producer
// choose; Timestamp -1 means none.
type Record struct {
	Topic       string
	Partition   int32
	KeySchema   *Schema
	Key         any
	ValueSchema *Schema
	Value       any
	Timestamp   int64
	Headers     []Header

	// Source records: where in the source this record came from.
	SourcePartition, SourceOffset map[string]any

	// Sink records: the Kafka offset, and the position before any SMT
	// renamed the topic or partition (what offsets are committed for).
	// A record with OriginalTopic set is a sink record (IsSink).
	KafkaOffset       int64
	OriginalTopic     string
	OriginalPartition int32
	OriginalOffset    int64
}

// Clone returns a deep copy of r: values, headers and source maps are
// copied, schemas are shared. SMTs clone before they change a record so
// the caller's copy (kept for retries and the DLQ) stays intact.
func (r *Record) Clone() *Record {
	if r == nil {
		return nil
	}
	c := *r
	c.Key = CloneValue(r.Key)
	c.Value = CloneValue(r.Value)
	if r.Headers != nil {
		c.Headers = make([]Header, len(r.Headers))
		for i, h := range r.Headers {
			c.Headers[i] = Header{Key: h.Key, Schema: h.Schema, Value: CloneValue(h.Value)}
		}
	}
	c.SourcePartition = CloneMap(r.SourcePartition)
	c.SourceOffset = CloneMap(r.SourceOffset)
	return &c
}

// Header returns the last header called key, as Kafka's lastWithName, or
// nil.
func (r *Record) Header(key string) *Header {
	for i := len(r.Headers) - 1; i >= 0; i-- {
		if r.Headers[i].Key == key {
			return &r.Headers[i]
		}
	}
	return nil
}

// IsSink reports whether r is a sink record (read from Kafka), which is
// what SMTs such as InsertField's offset.field require. The runtime marks
// sink records by setting OriginalTopic.
func (r *Record) IsSink() bool { return r.OriginalTopic != "" }
