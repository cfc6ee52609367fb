package broker

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/config"
	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/replica"
	"github.com/sluice-io/sluice/segment"
)

func TestErrorCodes(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("topic t partition 0: %w", err) }
	for _, tc := range []struct {
		err  error
		want *kerr.Error
	}{
		{wrap(segment.ErrCorruptBatch), kerr.CorruptMessage},
		{wrap(segment.ErrInvalidRecord), kerr.InvalidRecord},
		{wrap(segment.ErrBatchTooLarge), kerr.MessageTooLarge},
		{wrap(replica.ErrOffsetOutOfRange), kerr.OffsetOutOfRange},
		{wrap(replica.ErrOutOfOrderSequence), kerr.OutOfOrderSequenceNumber},
		{wrap(replica.ErrInvalidProducerEpoch), kerr.InvalidProducerEpoch},
		{wrap(replica.ErrClosed), kerr.UnknownTopicOrPartition},
		{wrap(segment.ErrLogClosed), kerr.UnknownTopicOrPartition},
		{wrap(controller.ErrTopicExists), kerr.TopicAlreadyExists},
		{wrap(controller.ErrInvalidTopic), kerr.InvalidTopicException},
		{wrap(controller.ErrPartitionLimit), kerr.PolicyViolation},
		{wrap(config.ErrInvalidConfig), kerr.InvalidConfig},
		{wrap(&fs.PathError{Op: "write", Path: "x.log", Err: syscall.ENOSPC}), kerr.KafkaStorageError},
		{wrap(fmt.Errorf("%w: acks", kerr.InvalidRequiredAcks)), kerr.InvalidRequiredAcks},
		{errors.New("something else"), kerr.UnknownServerError},
	} {
		if got := errorCode(tc.err); got != tc.want.Code {
			t.Errorf("%v: code %d, want %s (%d)", tc.err, got, tc.want.Message, tc.want.Code)
		}
	}
	if errorCode(nil) != 0 || errorMessage(nil) != nil {
		t.Error("nil error must map to success with no message")
	}
}
