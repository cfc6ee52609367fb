package broker

import (
	"github.com/sluice-io/sluice/controller"
)

// A CreateTopics or CreatePartitions is recorded in the metadata first and
// its partitions opened after. When opening fails (out of file descriptors,
// a full disk, any storage error) the change is undone here, so that the
// metadata never names partitions without a log: such a topic could be
// neither used nor deleted, and the next start would try, and fail, to open
// it again.

// undoCreate takes a topic whose partitions failed to open back out of the
// metadata and removes the directories this create made for it.
func (b *Broker) undoCreate(mt *controller.Topic, cause error) {
	_, err := b.meta.Commit(func(s *controller.State) ([]controller.Record, error) {
		return s.PlanUndoCreateTopic(mt.Name, mt.ID), nil
	})
	if err != nil {
		b.logger.Error("topic creation failed and could not be rolled back: the topic stays in the metadata without its partitions until the broker is restarted",
			"topic", mt.Name, "cause", cause, "err", err)
		return
	}
	b.applyImage()
	b.replicas.RemoveCreatedDirs(mt, 0)
	b.logger.Error("topic creation failed and was rolled back", "topic", mt.Name, "partitions", len(mt.Partitions), "cause", cause)
}

// undoGrow shrinks a topic whose new partitions failed to open back to had
// partitions and removes the directories made for the new ones.
func (b *Broker) undoGrow(mt *controller.Topic, had int32, cause error) {
	_, err := b.meta.Commit(func(s *controller.State) ([]controller.Record, error) {
		return s.PlanUndoCreatePartitions(mt.Name, mt.ID, had, int32(len(mt.Partitions))), nil
	})
	if err != nil {
		b.logger.Error("adding partitions failed and could not be rolled back: the new partitions stay in the metadata without logs until the broker is restarted",
			"topic", mt.Name, "cause", cause, "err", err)
		return
	}
	b.applyImage()
	b.replicas.RemoveCreatedDirs(mt, had)
	b.logger.Error("adding partitions failed and was rolled back", "topic", mt.Name, "partitions", had, "asked", len(mt.Partitions), "cause", cause)
}
