package broker

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-io/sluice/metarepl"
)

// The controller quorum's metrics, on every voter: Kafka's raft-metrics
// group (kafka.server:type=raft-metrics) under Sluice's prefix, so a
// dashboard finds the active controller, its epoch and how far each
// voter's copy of the metadata log has got.
var (
	descQuorumLeader = desc("sluice_raft_current_leader",
		"The active controller as this voter knows it (raft-metrics current-leader); -1 when none is known.")
	descQuorumEpoch = desc("sluice_raft_current_epoch",
		"The controller epoch this voter knows (raft-metrics current-epoch).")
	descQuorumState = desc("sluice_raft_current_state",
		"1 for this voter's role (raft-metrics current-state): leader while it is the active controller, follower while its copy of the metadata log follows one, else unattached.", "state")
	descQuorumHW = desc("sluice_raft_high_watermark",
		"The metadata log's high watermark on this voter (raft-metrics high-watermark).")
	descQuorumLEO = desc("sluice_raft_log_end_offset",
		"The end of this voter's copy of the metadata log (raft-metrics log-end-offset).")
)

// collectQuorum reports the quorum metrics of a voter (nothing elsewhere).
func (b *Broker) collectQuorum(ch chan<- prometheus.Metric) {
	q := b.ctrl
	if q == nil || !q.ready.Load() {
		return
	}
	l := q.leader()
	leader := int64(-1)
	if !l.Active.IsZero() {
		leader = int64(l.Active.ID)
	}
	constGauge(ch, descQuorumLeader, leader)
	constGauge(ch, descQuorumEpoch, int64(l.Epoch))
	st := q.rep.Status()
	state := "unattached"
	if _, ok := b.ctrlStore(); ok {
		state = "leader"
	} else if st.Role == metarepl.RoleFollower {
		state = "follower"
	}
	constGauge(ch, descQuorumState, 1, state)
	constGauge(ch, descQuorumHW, st.HighWatermark)
	constGauge(ch, descQuorumLEO, st.LogEndOffset)
}
