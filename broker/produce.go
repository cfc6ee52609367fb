package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/netio"
	"github.com/sluice-io/sluice/replica"
	"github.com/sluice-io/sluice/segment"
)

// handleProduce appends each partition's batches. Every partition is
// all-or-nothing: a bad batch fails that partition without writing any of
// its batches, while the request's other partitions go ahead, as in Kafka.
//
// On one node the replica set is {this node}, so acks=1 and acks=all both
// answer once the batches are in the log (and fsynced when the topic's flush
// policy asks for it); see docs/configuration.md for what that guarantees.
func (b *Broker) handleProduce(req *kmsg.ProduceRequest) *kmsg.ProduceResponse {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	acksOK := req.Acks == 0 || req.Acks == 1 || req.Acks == -1
	var waits []pendingAck
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		var t *topic
		if req.Version >= 13 {
			t = b.topics.getByID(controller.TopicID(rt.TopicID))
		} else {
			t = b.topics.get(rt.Topic)
		}
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
			var err error
			switch {
			case !acksOK:
				err = kerr.InvalidRequiredAcks
			case req.TransactionID != nil:
				err = fmt.Errorf("%w: transactions are not supported yet", kerr.TransactionalIDAuthorizationFailed)
			case t == nil && req.Version >= 13:
				err = kerr.UnknownTopicID
			default:
				var w *pendingAck
				w, err = b.produceTo(t, &sp, rp.Records, req.Version, req.Acks)
				if w != nil {
					// Where its answer will be: the slices stop
					// growing before the wait begins.
					w.ti, w.pi = len(resp.Topics), len(st.Partitions)
					waits = append(waits, *w)
				}
			}
			if err != nil {
				sp.ErrorCode = errorCode(err)
				if req.Version >= 8 {
					sp.ErrorMessage = errorMessage(err)
				}
				var nk *nullKeyError
				switch {
				case errors.As(err, &nk):
					// A client's mistake, repeated with every batch it
					// sends: the request-error metric counts it, and
					// logging it only at debug keeps it from flooding.
					b.logger.Debug("produce refused", "topic", t.name, "partition", rp.Partition, "err", err)
				case sp.ErrorCode == kerr.UnknownServerError.Code, sp.ErrorCode == kerr.CorruptMessage.Code,
					sp.ErrorCode == kerr.InvalidRecord.Code, sp.ErrorCode == kerr.MessageTooLarge.Code:
					name := rt.Topic
					if t != nil {
						name = t.name // v13+ requests name topics by id
					}
					b.logger.Warn("produce failed", "topic", name, "partition", rp.Partition, "err", err)
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if len(waits) > 0 {
		// The response's partitions are all in place: point each wait
		// at its own (the slices no longer grow).
		for i := range waits {
			waits[i].sp = &resp.Topics[waits[i].ti].Partitions[waits[i].pi]
		}
		b.waitForAcks(waits, time.Duration(req.TimeoutMillis)*time.Millisecond)
	}
	b.addProduceHints(resp)
	return resp
}

// produceTo appends to one partition this node leads. For acks=all on a
// replicated partition it returns what to wait for: the high watermark
// reaching the batch's end.
func (b *Broker) produceTo(t *topic, sp *kmsg.ProduceResponseTopicPartition, records []byte, version, acks int16) (*pendingAck, error) {
	p, err := t.leader(sp.Partition)
	switch {
	case err != nil:
		return nil, err
	case isInternalTopic(t.name):
		// Only the coordinators write their topics; a stray record
		// could corrupt a group's state.
		return nil, fmt.Errorf("%w: clients may not write to internal topic %s", kerr.InvalidTopicException, t.name)
	}
	repl := t.replication(sp.Partition)
	if repl != nil {
		// NOT_ENOUGH_REPLICAS before anything is written.
		if err := repl.CheckAppend(acks); err != nil {
			return nil, fmt.Errorf("topic %s partition %d: %w", t.name, sp.Partition, err)
		}
	}
	last, err := b.appendPartition(t, p, sp, records, version)
	if err != nil || repl == nil {
		return nil, err
	}
	repl.Appended(p.LogEndOffset())
	if acks != -1 {
		return nil, nil
	}
	return &pendingAck{key: sessionKey{t.name, sp.Partition}, repl: repl, required: last + 1}, nil
}

// appendPartition appends to the leader's log and returns the last offset
// written.
func (b *Broker) appendPartition(t *topic, p *replica.Partition, sp *kmsg.ProduceResponseTopicPartition, records []byte, version int16) (int64, error) {
	if len(records) == 0 {
		return 0, fmt.Errorf("%w: no record batches", segment.ErrCorruptBatch)
	}
	if version < 3 {
		// Produce v0-v2 carry the legacy message formats (magic 0 and 1);
		// the log stores only RecordBatch v2, so convert, as Kafka 3.x did.
		var err error
		if records, err = segment.UpconvertMessageSet(records, int(t.cfg.MaxMessageBytes)); err != nil {
			return 0, fmt.Errorf("topic %s partition %d: legacy message set: %w", t.name, sp.Partition, err)
		}
	}
	// Client-written control batches or transactional batches would need a
	// transaction coordinator that does not exist yet.
	// Only headers are looked at here; the partition validates everything.
	for off := 0; off+segment.BatchHeaderSize <= len(records); {
		h, err := segment.ParseBatchHeader(records[off:])
		if err != nil || h.Size() <= 0 {
			break
		}
		if h.Control() {
			return 0, fmt.Errorf("%w: clients may not write control batches", segment.ErrInvalidRecord)
		}
		if h.Transactional() {
			return 0, fmt.Errorf("%w: transactional batches are not supported yet", kerr.TransactionalIDAuthorizationFailed)
		}
		off += h.Size()
	}
	// Kafka decompresses every compressed batch at produce; storing one
	// unread would let garbage, or a header claiming 2^31 records, break
	// every consumer later. Streaming keeps this cheap in memory.
	if strings.Contains(t.cfg.CleanupPolicy, "compact") {
		// The same validation, finding keyless records on the way.
		if err := refuseNullKeys(t, p, sp, records, version, b.maxDecompressedBytes(), b.metrics.noKeyCompacted); err != nil {
			return 0, err
		}
	} else if err := segment.ValidateCompressedBatches(records, b.maxDecompressedBytes()); err != nil {
		return 0, fmt.Errorf("topic %s partition %d: %w", t.name, sp.Partition, err)
	}
	res, err := p.Append(records)
	// Even a failed append may have moved HW (the write landed, its fsync
	// failed), so waiting fetches look either way.
	b.wakeFetches(t.name, sp.Partition)
	if err != nil {
		return 0, fmt.Errorf("topic %s partition %d: %w", t.name, sp.Partition, err)
	}
	if !res.Duplicate {
		t.m.bytesIn.Add(float64(len(records)))
		t.m.msgsIn.Add(float64(res.LastOffset - res.BaseOffset + 1))
	}
	sp.BaseOffset = res.BaseOffset
	sp.LogAppendTime = res.LogAppendTime
	sp.LogStartOffset = res.LogStartOffset
	return res.LastOffset, nil
}

// refuseNullKeys validates records for a compacted topic's partition and
// refuses them whole if a record has no key: compaction keeps the last
// record of each key, and a keyless one has none. As Kafka's
// LogValidator.validateKey: INVALID_RECORD, and from Produce v8 one
// RecordError per keyless record of the first batch holding any, by its
// index within that batch (at most segment.MaxNullKeysReported of them; the
// partition's message gives the exact count).
func refuseNullKeys(t *topic, p *replica.Partition, sp *kmsg.ProduceResponseTopicPartition, records []byte, version int16, maxDecompressed int64, refused prometheus.Counter) error {
	nk, err := segment.FindNullKeys(records, int(t.cfg.MaxMessageBytes), maxDecompressed)
	if err != nil {
		return fmt.Errorf("topic %s partition %d: %w", t.name, sp.Partition, err)
	}
	if nk.Count == 0 {
		return nil
	}
	refused.Add(float64(nk.Count))
	msg := fmt.Sprintf("Compacted topic cannot accept message without key in topic partition %s-%d", t.name, sp.Partition)
	if version >= 8 {
		sp.ErrorRecords = make([]kmsg.ProduceResponseTopicPartitionErrorRecord, len(nk.Indexes))
		for i, idx := range nk.Indexes {
			sp.ErrorRecords[i] = kmsg.ProduceResponseTopicPartitionErrorRecord{RelativeOffset: idx, ErrorMessage: &msg}
		}
	}
	sp.LogStartOffset = p.LogStartOffset() // Kafka's answer to a refused record carries it
	// Kafka's partition message, RecordValidationException's: the count
	// and the first three record errors as Java prints them.
	var first strings.Builder
	for i, idx := range nk.Indexes[:min(len(nk.Indexes), 3)] {
		if i > 0 {
			first.WriteString(", ")
		}
		fmt.Fprintf(&first, "RecordError(batchIndex=%d, message='%s')", idx, msg)
	}
	return &nullKeyError{fmt.Sprintf("One or more records have been rejected due to %d record errors in total, "+
		"and only showing the first three errors at most: [%s]", nk.Count, first.String())}
}

// nullKeyError is a produce refused for keyless records on a compacted
// topic: INVALID_RECORD, with Kafka's message.
type nullKeyError struct{ msg string }

func (e *nullKeyError) Error() string { return e.msg }
func (e *nullKeyError) Unwrap() error { return kerr.InvalidRecord }

func produceFailed(resp *kmsg.ProduceResponse) bool {
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 {
				return true
			}
		}
	}
	return false
}

func init() {
	// Produce starts at v0 although clients send v3+: librdkafka up to
	// 2.11.0 (Debian's kcat among them) turns gzip, snappy and lz4 off
	// unless the broker's Produce range reaches v0. v0-v2 are really
	// served: their legacy message sets are converted to RecordBatch v2
	// (segment.UpconvertMessageSet).
	register(api{key: kmsg.Produce, min: 0, max: 13,
		raw: func(b *Broker, _ context.Context, r *netio.Request, req kmsg.Request) *netio.Response {
			pr := req.(*kmsg.ProduceRequest)
			resp := b.handleProduce(pr)
			resp.SetVersion(r.Version)
			b.metrics.countErrors(apis[kmsg.Produce], resp)
			if pr.Acks == 0 {
				// acks=0: the client waits for nothing, so a failure can
				// only be signalled by closing the connection, as Kafka
				// does.
				if produceFailed(resp) {
					return &netio.Response{CloseAfter: true}
				}
				return nil
			}
			return encode(resp)
		},
		errorCodes: codes(func(r *kmsg.ProduceResponse, count func(int16)) {
			for _, t := range r.Topics {
				for _, p := range t.Partitions {
					count(p.ErrorCode)
				}
			}
		}),
	})
}
