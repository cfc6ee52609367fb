package cli

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// quorumState is the metadata quorum as DescribeQuorum reports it (what
// kafka-metadata-quorum describe --status and --replication print); its
// json tags are part of "cluster describe --json".
type quorumState struct {
	LeaderID      int32          `json:"leader_id"`
	LeaderEpoch   int32          `json:"leader_epoch"`
	HighWatermark int64          `json:"high_watermark"`
	Replicas      []quorumMember `json:"replicas"` // voters first, then observers
}

// quorumMember is one voter or observer of the metadata log.
type quorumMember struct {
	NodeID int32  `json:"node_id"`
	Role   string `json:"role"` // leader, follower (another voter) or observer
	// DirectoryID is a voter's directory id (32 hex digits), what
	// "cluster add-voter" and "remove-voter" take; empty if not reported.
	DirectoryID string `json:"directory_id,omitempty"`
	// LogEndOffset is -1 when unknown; Lag is the high watermark minus it.
	LogEndOffset int64 `json:"log_end_offset"`
	Lag          int64 `json:"lag"`
	// LastFetchMs and LastCaughtUpMs are Unix milliseconds, -1 unknown.
	LastFetchMs    int64 `json:"last_fetch_timestamp_ms"`
	LastCaughtUpMs int64 `json:"last_caught_up_timestamp_ms"`
}

// metadataTopic is the metadata log DescribeQuorum describes.
const metadataTopic = "__cluster_metadata"

// describeQuorum asks for the metadata quorum. A cluster whose brokers do
// not serve DescribeQuorum (one that predates KRaft) yields nil without an
// error: the quorum section is then left out.
func describeQuorum(ctx context.Context, c *client, info clusterInfo) (*quorumState, error) {
	if !servesAPI(info, kmsg.DescribeQuorum.Int16()) {
		return nil, nil
	}
	req := kmsg.NewPtrDescribeQuorumRequest()
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic = metadataTopic
	rt.Partitions = append(rt.Partitions, kmsg.NewDescribeQuorumRequestTopicPartition())
	req.Topics = append(req.Topics, rt)
	kresp, err := req.RequestWith(ctx, c.kgo)
	switch {
	case err != nil:
		return nil, fmt.Errorf("describe the metadata quorum: %w", err)
	case kresp.ErrorCode != 0:
		return nil, fmt.Errorf("describe the metadata quorum: %w", kerr.ErrorForCode(kresp.ErrorCode))
	case len(kresp.Topics) != 1 || len(kresp.Topics[0].Partitions) != 1:
		return nil, fmt.Errorf("describe the metadata quorum: the answer names %d topics", len(kresp.Topics))
	}
	p := kresp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		return nil, fmt.Errorf("describe the metadata quorum: %w", err)
	}
	q := &quorumState{LeaderID: p.LeaderID, LeaderEpoch: p.LeaderEpoch, HighWatermark: p.HighWatermark, Replicas: []quorumMember{}}
	add := func(rs []kmsg.DescribeQuorumResponseTopicPartitionReplicaState, voters bool) {
		for _, r := range rs {
			m := quorumMember{NodeID: r.ReplicaID, Role: "observer", LogEndOffset: r.LogEndOffset, Lag: -1,
				LastFetchMs: r.LastFetchTimestamp, LastCaughtUpMs: r.LastCaughtUpTimestamp}
			switch {
			case voters && r.ReplicaID == p.LeaderID:
				m.Role = "leader"
			case voters:
				m.Role = "follower"
			}
			if r.LogEndOffset >= 0 {
				m.Lag = max(0, p.HighWatermark-r.LogEndOffset)
			}
			if voters && r.ReplicaDirectoryID != ([16]byte{}) {
				m.DirectoryID = hex.EncodeToString(r.ReplicaDirectoryID[:])
			}
			q.Replicas = append(q.Replicas, m)
		}
	}
	add(p.CurrentVoters, true)
	add(p.Observers, false)
	return q, nil
}

// servesAPI reports whether any broker advertises API key.
func servesAPI(info clusterInfo, key int16) bool {
	for _, b := range info.Brokers {
		for _, v := range b.APIVersions {
			if v.Key == key {
				return true
			}
		}
	}
	return false
}

// printQuorum prints the quorum section of "cluster describe", with ages
// relative to now.
func printQuorum(w io.Writer, q *quorumState, now time.Time) error {
	fmt.Fprintf(w, "\nMetadata quorum: leader %d, epoch %d, high watermark %d\n", q.LeaderID, q.LeaderEpoch, q.HighWatermark)
	tw := newTable(w)
	fmt.Fprintln(tw, "NODE-ID\tROLE\tLOG-END\tLAG\tLAST-FETCH\tLAST-CAUGHT-UP")
	for _, m := range q.Replicas {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", m.NodeID, m.Role, offsetCell(m.LogEndOffset), offsetCell(m.Lag),
			ageCell(m.LastFetchMs, now), ageCell(m.LastCaughtUpMs, now))
	}
	return tw.Flush()
}

func offsetCell(v int64) string {
	if v < 0 {
		return "-"
	}
	return strconv.FormatInt(v, 10)
}

// ageCell renders a Unix-millisecond time as an age ("1.2s ago"), "-" for
// unknown.
func ageCell(ms int64, now time.Time) string {
	if ms < 0 {
		return "-"
	}
	age := max(0, now.Sub(time.UnixMilli(ms)))
	return age.Round(100*time.Millisecond).String() + " ago"
}
