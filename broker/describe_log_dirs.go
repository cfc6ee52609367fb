package broker

import (
	"path/filepath"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/replicamgr"
)

// DescribeLogDirs answers for this broker alone (it is never forwarded):
// every configured log dir, and in it each hosted partition's size on disk
// and offset lag, so kafka-log-dirs and kadm can see what retention and
// compaction did to a replica.
func (b *Broker) handleDescribeLogDirs(req *kmsg.DescribeLogDirsRequest) *kmsg.DescribeLogDirsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	want := logDirsFilter(req.Topics)
	byDir := make(map[string][]kmsg.DescribeLogDirsResponseDirTopic, len(b.cfg.LogDirs))
	for _, t := range b.replicas.Topics() {
		for dir, dt := range describeTopicDirs(t, want) {
			byDir[dir] = append(byDir[dir], dt)
		}
	}
	for i, dir := range b.cfg.LogDirs {
		d := kmsg.NewDescribeLogDirsResponseDir()
		// Kafka names a dir by its absolute path; a relative log.dirs
		// entry is made absolute so two brokers' answers compare.
		d.Dir = dir
		if abs, err := filepath.Abs(dir); err == nil {
			d.Dir = abs
		}
		// A dir failing writes (a full disk, say) is KAFKA_STORAGE_ERROR,
		// but unlike Kafka's offline dir its replicas are still read and
		// served, so they are listed too: their sizes are what an
		// operator freeing space wants to see.
		if b.storage != nil && i < len(b.storage.dirs) && b.storage.dirs[i].down.Load() {
			d.ErrorCode = kerr.KafkaStorageError.Code
		}
		d.Topics = byDir[dir]
		if req.Version >= 4 {
			d.TotalBytes, d.UsableBytes = volumeSpace(dir)
		}
		resp.Dirs = append(resp.Dirs, d)
	}
	return resp
}

// logDirsFilter is the partitions asked for by topic, nil for all (a null
// topic list). A topic asked for with no partitions selects none of them.
func logDirsFilter(topics []kmsg.DescribeLogDirsRequestTopic) map[string]map[int32]bool {
	if topics == nil {
		return nil
	}
	want := make(map[string]map[int32]bool, len(topics))
	for _, rt := range topics {
		ps := want[rt.Topic]
		if ps == nil {
			ps = make(map[int32]bool, len(rt.Partitions))
			want[rt.Topic] = ps
		}
		for _, p := range rt.Partitions {
			ps[p] = true
		}
	}
	return want
}

// describeTopicDirs is t's hosted partitions that want selects, grouped by
// the log dir holding them. A partition not hosted here, or offline (its
// files could not be read, so its size is unknown), is left out, as Kafka
// leaves out what it does not host.
func describeTopicDirs(t *replicamgr.Topic, want map[string]map[int32]bool) map[string]kmsg.DescribeLogDirsResponseDirTopic {
	var ps map[int32]bool
	if want != nil {
		if ps = want[t.Name]; ps == nil {
			return nil
		}
	}
	out := make(map[string]kmsg.DescribeLogDirsResponseDirTopic)
	for i := range t.Partitions {
		p := &t.Partitions[i]
		if p.Replica == nil || p.Dir == "" || (ps != nil && !ps[p.Index]) {
			continue
		}
		dp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
		dp.Partition = p.Index
		dp.Size = p.Replica.Size()
		// There are no future replicas (no AlterReplicaLogDirs), so every
		// replica is current, and Kafka's lag of a current replica is how
		// far its log end is behind the high watermark: never, here, but
		// computed rather than assumed.
		dp.OffsetLag = max(p.Replica.HighWatermark()-p.Replica.LogEndOffset(), 0)
		dt, ok := out[p.Dir]
		if !ok {
			dt = kmsg.NewDescribeLogDirsResponseDirTopic()
			dt.Topic = t.Name
		}
		dt.Partitions = append(dt.Partitions, dp)
		out[p.Dir] = dt
	}
	return out
}

func init() {
	register(api{key: kmsg.DescribeLogDirs, min: 0, max: 5,
		handle: method((*Broker).handleDescribeLogDirs),
		errorCodes: codes(func(r *kmsg.DescribeLogDirsResponse, count func(int16)) {
			count(r.ErrorCode)
			for _, d := range r.Dirs {
				count(d.ErrorCode)
			}
		}),
	})
}
