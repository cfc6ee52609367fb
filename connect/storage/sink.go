package storage

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// A sink connector's offsets are its tasks' consumer group's committed
// offsets. The offsets API (KIP-875) shows them in connector-offset shape:
// {"kafka_topic":T,"kafka_partition":P} -> {"kafka_offset":O}.
const (
	SinkTopicKey     = "kafka_topic"
	SinkPartitionKey = "kafka_partition"
	SinkOffsetKey    = "kafka_offset"
)

// SinkGroupID is the consumer group of a sink connector's tasks
// (SinkUtils.consumerGroupId).
func SinkGroupID(connector string) string { return "connect-" + connector }

// TopicPartition names one partition of a topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// BadOffsetsError is a malformed offsets request: the REST API answers 400
// with Msg, which is Kafka's wording.
type BadOffsetsError struct{ Msg string }

func (e *BadOffsetsError) Error() string { return e.Msg }

// SinkOffsets is connector's committed consumer group offsets, sorted by
// topic and partition; none when the group does not exist. Numbers are
// int64, as JSON reads back.
func SinkOffsets(ctx context.Context, adm *kadm.Client, connector string) ([]ConnectorOffset, error) {
	resp, err := adm.FetchOffsets(ctx, SinkGroupID(connector))
	if errors.Is(err, kerr.GroupIDNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("Failed to retrieve consumer group offsets for sink connector %s: %w", connector, err) //nolint:revive,staticcheck // Kafka's message
	}
	var out []ConnectorOffset
	for _, o := range resp.Sorted() {
		if o.Err != nil {
			return nil, fmt.Errorf("Failed to retrieve consumer group offsets for sink connector %s: %s[%d]: %w", connector, o.Topic, o.Partition, o.Err) //nolint:revive,staticcheck // Kafka's message
		}
		if o.At < 0 {
			continue // no committed offset
		}
		out = append(out, ConnectorOffset{
			Partition: map[string]any{SinkTopicKey: o.Topic, SinkPartitionKey: int64(o.Partition)},
			Offset:    map[string]any{SinkOffsetKey: o.At},
		})
	}
	return out, nil
}

// ParseSinkOffsets checks and reads the offsets of a PATCH request for a
// sink connector (SinkUtils.parseSinkConnectorOffsets): a nil offset resets
// that partition. Numbers may also be given as strings, as Kafka allows.
// Errors are *BadOffsetsError.
func ParseSinkOffsets(offsets []ConnectorOffset) (map[TopicPartition]*int64, error) {
	out := make(map[TopicPartition]*int64, len(offsets))
	for _, o := range offsets {
		p := o.Partition
		if p == nil {
			return nil, &BadOffsetsError{"The partition for a sink connector offset cannot be null or missing"}
		}
		topic, okT := p[SinkTopicKey]
		part, okP := p[SinkPartitionKey]
		if !okT || !okP {
			return nil, &BadOffsetsError{fmt.Sprintf("The partition for a sink connector offset must contain the keys '%s' and '%s'", SinkTopicKey, SinkPartitionKey)}
		}
		if topic == nil {
			return nil, &BadOffsetsError{"Kafka topic names must be valid strings and may not be null"}
		}
		if part == nil {
			return nil, &BadOffsetsError{"Kafka partitions must be valid numbers and may not be null"}
		}
		n, ok := wholeNumber(part, math.MinInt32, math.MaxInt32)
		if !ok {
			return nil, &BadOffsetsError{fmt.Sprintf("Failed to parse the following Kafka partition value in the provided offsets: '%v'. Partition values for sink connectors need to be integers.", part)}
		}
		tp := TopicPartition{Topic: fmt.Sprint(topic), Partition: int32(n)}
		if o.Offset == nil {
			out[tp] = nil
			continue
		}
		off, ok := o.Offset[SinkOffsetKey]
		if !ok {
			return nil, &BadOffsetsError{fmt.Sprintf("The offset for a sink connector should either be null or contain the key '%s'", SinkOffsetKey)}
		}
		at, ok := wholeNumber(off, math.MinInt64, math.MaxInt64)
		if !ok {
			return nil, &BadOffsetsError{fmt.Sprintf("Failed to parse the following Kafka offset value in the provided offsets: '%v'. Offset values for sink connectors need to be integers.", off)}
		}
		out[tp] = &at
	}
	return out, nil
}

// wholeNumber reads a JSON number or numeric string within [lo, hi].
func wholeNumber(v any, lo, hi int64) (int64, bool) {
	var n int64
	switch x := v.(type) {
	case int64:
		n = x
	case int:
		n = int64(x)
	case int32:
		n = int64(x)
	case float64: // encoding/json's reading of any number
		if x != math.Trunc(x) || x < math.MinInt64 || x >= math.MaxInt64 {
			return 0, false
		}
		n = int64(x)
	case string:
		i, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return 0, false
		}
		n = i
	case fmt.Stringer: // json.Number
		i, err := strconv.ParseInt(x.String(), 10, 64)
		if err != nil {
			return 0, false
		}
		n = i
	default:
		return 0, false
	}
	return n, n >= lo && n <= hi
}

// AlterSinkOffsets commits the given offsets for connector's group and
// deletes those given as nil. The connector's tasks must be stopped: a
// group with members refuses both.
func AlterSinkOffsets(ctx context.Context, adm *kadm.Client, connector string, offsets map[TopicPartition]*int64) error {
	group := SinkGroupID(connector)
	commit := kadm.Offsets{}
	reset := kadm.TopicsSet{}
	for tp, at := range offsets {
		if at == nil {
			reset.Add(tp.Topic, tp.Partition)
		} else {
			commit.Add(kadm.Offset{Topic: tp.Topic, Partition: tp.Partition, At: *at, LeaderEpoch: -1})
		}
	}
	var errs []error
	if len(commit) > 0 {
		resp, err := adm.CommitOffsets(ctx, group, commit)
		if err == nil {
			err = firstOffsetError(resp)
		}
		errs = append(errs, err)
	}
	if len(reset) > 0 {
		resp, err := adm.DeleteOffsets(ctx, group, reset)
		if errors.Is(err, kerr.GroupIDNotFound) {
			err = nil // nothing to delete
		}
		if err == nil {
			err = resp.Error()
		}
		errs = append(errs, err)
	}
	err := errors.Join(errs...)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, kerr.UnknownMemberID), errors.Is(err, kerr.GroupSubscribedToTopic), errors.Is(err, kerr.NonEmptyGroup):
		return fmt.Errorf("Failed to alter consumer group offsets for connector %s either because its tasks haven't stopped completely yet or the connector was resumed before the request to alter its offsets could be successfully completed. If the connector is in a stopped state, this operation can be safely retried. If it doesn't eventually succeed, the Connect cluster may need to be restarted to get rid of the zombie sink tasks.: %w", connector, err) //nolint:revive,staticcheck // Kafka's message
	default:
		return fmt.Errorf("Failed to alter consumer group offsets for connector %s: %w", connector, err) //nolint:revive,staticcheck // Kafka's message
	}
}

// firstOffsetError is the first per-partition error, in topic and
// partition order so the message does not depend on map order.
func firstOffsetError(resp kadm.OffsetResponses) error {
	for _, r := range resp.Sorted() {
		if r.Err != nil {
			return fmt.Errorf("%s[%d]: %w", r.Topic, r.Partition, r.Err)
		}
	}
	return nil
}

// ResetSinkOffsets deletes connector's consumer group, and so all its
// offsets; a group that does not exist is already reset.
func ResetSinkOffsets(ctx context.Context, adm *kadm.Client, connector string) error {
	resp, err := adm.DeleteGroup(ctx, SinkGroupID(connector))
	if err == nil {
		err = resp.Err
	}
	switch {
	case err == nil, errors.Is(err, kerr.GroupIDNotFound):
		return nil
	case errors.Is(err, kerr.NonEmptyGroup):
		return fmt.Errorf("Failed to reset consumer group offsets for connector %s either because its tasks haven't stopped completely yet or the connector was resumed before the request to reset its offsets could be successfully completed. If the connector is in a stopped state, this operation can be safely retried. If it doesn't eventually succeed, the Connect cluster may need to be restarted to get rid of the zombie sink tasks.: %w", connector, err) //nolint:revive,staticcheck // Kafka's message
	default:
		return fmt.Errorf("Failed to reset consumer group offsets for sink connector %s: %w", connector, err) //nolint:revive,staticcheck // Kafka's message
	}
}
