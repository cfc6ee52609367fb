package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const groupDescribeUsage = `usage: sluice group describe GROUP... [flags]

For each group: state, type (classic, or consumer for KIP-848 groups),
assignor, coordinator, epoch, members with their assigned partitions, then
one row per partition the group is assigned or has committed offsets for:

  TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG MEMBER-ID CLIENT-ID HOST

CURRENT-OFFSET and LAG are "-" where the group has committed nothing.
Groups that do not exist are reported on stderr and make the exit code 1;
the others are still described.

flags:
` + commonFlagsUsage

// The describe result types: their json tags are the --json interface.
// Fields that do not apply to a group's type are null rather than omitted,
// so every document has the same shape.
type groupDescribeResult struct {
	Groups   []describedGroup `json:"groups"`
	NotFound []string         `json:"not_found"`
}

type describedGroup struct {
	GroupID      string    `json:"group_id"`
	State        string    `json:"state"`
	Type         string    `json:"type"`
	ProtocolType string    `json:"protocol_type"`
	Assignor     string    `json:"assignor"`
	Coordinator  brokerRef `json:"coordinator"`
	// Epoch is the KIP-848 group epoch. Classic groups have a generation
	// instead, but DescribeGroups does not return it, so it is null.
	Epoch           *int32         `json:"epoch"`
	AssignmentEpoch *int32         `json:"assignment_epoch"`
	Members         []groupMember  `json:"members"`
	Partitions      []partitionLag `json:"partitions"`
	TotalLag        int64          `json:"total_lag"` // sum of the known per-partition lags
}

type groupMember struct {
	MemberID    string            `json:"member_id"`
	InstanceID  *string           `json:"instance_id"`
	ClientID    string            `json:"client_id"`
	Host        string            `json:"host"`
	MemberEpoch *int32            `json:"member_epoch"` // KIP-848 groups only
	Assignment  []topicPartitions `json:"assignment"`
	// TargetAssignment is where a KIP-848 coordinator is moving the member;
	// it differs from Assignment while the group reconciles.
	TargetAssignment []topicPartitions `json:"target_assignment"`
}

type topicPartitions struct {
	Topic      string  `json:"topic"`
	Partitions []int32 `json:"partitions"`
}

// partitionLag is one row of the offsets table. Offsets that are unknown
// (nothing committed, or the end offset could not be listed) are null.
type partitionLag struct {
	Topic         string  `json:"topic"`
	Partition     int32   `json:"partition"`
	CurrentOffset *int64  `json:"current_offset"`
	LogEndOffset  *int64  `json:"log_end_offset"`
	Lag           *int64  `json:"lag"`
	MemberID      string  `json:"member_id"` // empty when no member is assigned the partition
	ClientID      string  `json:"client_id"`
	Host          string  `json:"host"`
	Error         *string `json:"error"`
}

func runGroupDescribe(args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("group describe")
	names, err := parseArgs(fs, args)
	if err != nil {
		return handleParseError(err, groupDescribeUsage, stdout, stderr)
	}
	if len(names) == 0 {
		return reportUsage(stderr, groupDescribeUsage, usagef("name at least one GROUP to describe"))
	}
	names = dedupe(names)

	return runWithClient(cf, groupDescribeUsage, stderr, func(ctx context.Context, c *client) error {
		res, problems, err := describeGroups(ctx, c, names)
		if err != nil {
			return err
		}
		if cf.json {
			err = writeJSON(stdout, res)
		} else {
			err = printGroupDescriptions(stdout, res.Groups)
		}
		if err != nil {
			return err
		}
		for _, g := range res.NotFound {
			fmt.Fprintf(stderr, "sluice: group %q not found\n", g)
		}
		for _, p := range problems {
			fmt.Fprintf(stderr, "sluice: %s\n", oneLine(p))
		}
		if len(res.NotFound) > 0 || len(problems) > 0 {
			return errReported
		}
		return nil
	})
}

func dedupe(names []string) []string {
	seen := make(map[string]bool, len(names))
	out := names[:0:0]
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// describeGroups gathers everything "group describe" shows. Problems are
// per-group failures (the group exists but part of it could not be read);
// err is reserved for failures that leave nothing to show.
//
// KIP-848 ("consumer") groups are only fully visible through
// ConsumerGroupDescribe and classic groups only through DescribeGroups, so
// the type is learned first from ListGroups v5. If listing fails or the
// broker predates v5, every group is taken as classic: such brokers do not
// run KIP-848 groups.
func describeGroups(ctx context.Context, c *client, names []string) (groupDescribeResult, []string, error) {
	res := groupDescribeResult{Groups: []describedGroup{}, NotFound: []string{}}
	var problems []string

	consumerType := map[string]bool{}
	if listed, _ := listGroups(ctx, c, nil, []string{"consumer"}); listed != nil {
		for _, g := range listed {
			if g.Type == "consumer" {
				consumerType[g.GroupID] = true
			}
		}
	}
	var next, classic []string
	for _, n := range names {
		if consumerType[n] {
			next = append(next, n)
		} else {
			classic = append(classic, n)
		}
	}

	found := make(map[string]*describedGroup, len(names))
	failed := make(map[string]string)
	if len(next) > 0 {
		gone, err := describeConsumerGroups(ctx, c, next, found, failed)
		if err != nil {
			return res, nil, err
		}
		// Not found as a KIP-848 group although listed as one: it may have
		// been converted to classic (KIP-848 allows both ways) since.
		classic = append(classic, gone...)
	}
	if len(classic) > 0 {
		if err := describeClassicGroups(ctx, c, classic, found, failed); err != nil {
			return res, nil, err
		}
	}

	var described []*describedGroup
	for _, n := range names {
		switch g := found[n]; {
		case g != nil:
			described = append(described, g)
		case failed[n] != "":
			problems = append(problems, fmt.Sprintf("group %q: %s", n, failed[n]))
		default:
			res.NotFound = append(res.NotFound, n)
		}
	}
	offsetProblems, err := fillPartitions(ctx, c, described)
	if err != nil {
		return res, nil, err
	}
	problems = append(problems, offsetProblems...)
	for _, g := range described {
		res.Groups = append(res.Groups, *g)
	}
	return res, problems, nil
}

// describeConsumerGroups describes KIP-848 groups into found, recording
// per-group errors in failed, and returns the groups the coordinator says
// do not exist as consumer groups. The request is issued directly because
// kadm.DescribeConsumerGroups keys assignments by topic name only, and
// brokers may send only topic IDs (names are then resolved via metadata).
func describeConsumerGroups(ctx context.Context, c *client, names []string, found map[string]*describedGroup, failed map[string]string) ([]string, error) {
	req := kmsg.NewPtrConsumerGroupDescribeRequest()
	req.Groups = names

	var gone []string
	var idsToName map[[16]byte]string // loaded on first nameless topic
	topicName := func(tp kmsg.AssignmentTopicPartition) (string, error) {
		if tp.Topic != "" {
			return tp.Topic, nil
		}
		if idsToName == nil {
			md, err := c.adm.Metadata(ctx)
			if err != nil {
				return "", fmt.Errorf("resolving topic IDs: %w", err)
			}
			idsToName = make(map[[16]byte]string, len(md.Topics))
			for _, t := range md.Topics {
				idsToName[t.ID] = t.Topic
			}
		}
		if n, ok := idsToName[tp.TopicID]; ok {
			return n, nil
		}
		return kadm.TopicID(tp.TopicID).String(), nil // deleted meanwhile: show the ID
	}
	convert := func(a kmsg.Assignment) ([]topicPartitions, error) {
		set := make(kadm.TopicsSet)
		for _, tp := range a.TopicPartitions {
			name, err := topicName(tp)
			if err != nil {
				return nil, err
			}
			set.Add(name, tp.Partitions...)
		}
		return fromTopicsSet(set), nil
	}

	for _, shard := range c.kgo.RequestSharded(ctx, req) {
		if shard.Err != nil {
			if ctx.Err() != nil {
				return nil, shard.Err
			}
			for _, n := range shard.Req.(*kmsg.ConsumerGroupDescribeRequest).Groups {
				failed[n] = shard.Err.Error()
			}
			continue
		}
		for _, rg := range shard.Resp.(*kmsg.ConsumerGroupDescribeResponse).Groups {
			if err := kerr.ErrorForCode(rg.ErrorCode); err != nil {
				if errors.Is(err, kerr.GroupIDNotFound) {
					gone = append(gone, rg.Group)
				} else {
					failed[rg.Group] = errWithMessage(err, rg.ErrorMessage)
				}
				continue
			}
			epoch, assignmentEpoch := rg.Epoch, rg.AssignmentEpoch
			g := &describedGroup{
				GroupID:         rg.Group,
				State:           rg.State,
				Type:            "consumer",
				ProtocolType:    "consumer",
				Assignor:        rg.AssignorName,
				Coordinator:     newBrokerRef(shard.Meta),
				Epoch:           &epoch,
				AssignmentEpoch: &assignmentEpoch,
				Members:         []groupMember{},
			}
			for _, rm := range rg.Members {
				assigned, err := convert(rm.Assignment)
				if err != nil {
					return nil, err
				}
				target, err := convert(rm.TargetAssignment)
				if err != nil {
					return nil, err
				}
				memberEpoch := rm.MemberEpoch
				g.Members = append(g.Members, groupMember{
					MemberID:         rm.MemberID,
					InstanceID:       rm.InstanceID,
					ClientID:         rm.ClientID,
					Host:             rm.ClientHost,
					MemberEpoch:      &memberEpoch,
					Assignment:       assigned,
					TargetAssignment: target,
				})
			}
			sortMembers(g.Members)
			found[g.GroupID] = g
		}
	}
	return gone, nil
}

// describeClassicGroups describes classic groups through kadm, which also
// decodes the members' consumer-protocol assignments. A group that does not
// exist comes back as state Dead (or GROUP_ID_NOT_FOUND from v6) and is left
// out of both found and failed.
func describeClassicGroups(ctx context.Context, c *client, names []string, found map[string]*describedGroup, failed map[string]string) error {
	described, err := c.adm.DescribeGroups(ctx, names...)
	if err != nil {
		var se *kadm.ShardErrors
		if !errors.As(err, &se) || ctx.Err() != nil {
			return err
		}
		for _, e := range se.Errs {
			if req, ok := e.Req.(*kmsg.DescribeGroupsRequest); ok {
				for _, n := range req.Groups {
					failed[n] = e.Err.Error()
				}
			}
		}
	}
	for _, dg := range described {
		if errors.Is(dg.Err, kerr.GroupIDNotFound) || (dg.Err == nil && dg.State == "Dead") {
			continue
		}
		if dg.Err != nil {
			failed[dg.Group] = errWithMessage(dg.Err, &dg.ErrMessage)
			continue
		}
		g := &describedGroup{
			GroupID:      dg.Group,
			State:        dg.State,
			Type:         "classic",
			ProtocolType: dg.ProtocolType,
			Assignor:     dg.Protocol,
			Coordinator:  newBrokerRef(dg.Coordinator),
			Members:      []groupMember{},
		}
		for _, m := range dg.Members {
			gm := groupMember{
				MemberID:   m.MemberID,
				InstanceID: m.InstanceID,
				ClientID:   m.ClientID,
				Host:       m.ClientHost,
				Assignment: []topicPartitions{},
			}
			// Only the "consumer" protocol type has partitions to show;
			// connect and other embedded protocols are opaque here.
			if a, ok := m.Assigned.AsConsumer(); ok && a != nil {
				set := make(kadm.TopicsSet)
				for _, t := range a.Topics {
					set.Add(t.Topic, t.Partitions...)
				}
				gm.Assignment = fromTopicsSet(set)
			}
			g.Members = append(g.Members, gm)
		}
		sortMembers(g.Members)
		found[g.GroupID] = g
	}
	return nil
}

// fillPartitions builds each group's offsets table: every partition a
// member is assigned plus every partition with a committed offset, joined
// with the log end offsets. End offsets are listed once for all groups.
func fillPartitions(ctx context.Context, c *client, groups []*describedGroup) ([]string, error) {
	var problems []string
	type key struct {
		topic string
		part  int32
	}
	rows := make([]map[key]*partitionLag, len(groups))
	topics := make(kadm.TopicsSet)
	for i, g := range groups {
		rows[i] = make(map[key]*partitionLag)
		for _, m := range g.Members {
			for _, tp := range m.Assignment {
				for _, p := range tp.Partitions {
					rows[i][key{tp.Topic, p}] = &partitionLag{
						Topic: tp.Topic, Partition: p,
						MemberID: m.MemberID, ClientID: m.ClientID, Host: m.Host,
					}
				}
				topics.Add(tp.Topic)
			}
		}
		committed, err := c.adm.FetchOffsets(ctx, g.GroupID)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			problems = append(problems, fmt.Sprintf("group %q: cannot fetch committed offsets: %v", g.GroupID, err))
		}
		committed.Each(func(o kadm.OffsetResponse) {
			if o.Err == nil && o.At < 0 {
				return // requested but never committed: same as absent
			}
			k := key{o.Topic, o.Partition}
			r := rows[i][k]
			if r == nil {
				r = &partitionLag{Topic: o.Topic, Partition: o.Partition}
				rows[i][k] = r
			}
			if o.Err != nil {
				r.Error = errString(fmt.Errorf("committed offset: %w", o.Err))
				return
			}
			at := o.At
			r.CurrentOffset = &at
			topics.Add(o.Topic)
		})
	}

	var ends kadm.ListedOffsets
	if len(topics) > 0 {
		var err error
		ends, err = c.adm.ListEndOffsets(ctx, topics.Topics()...)
		var se *kadm.ShardErrors
		if err != nil && (!errors.As(err, &se) || ctx.Err() != nil) {
			return nil, fmt.Errorf("listing end offsets: %w", err)
		}
		// Shard errors leave partitions out of ends; their rows say so.
	}

	for i, g := range groups {
		g.Partitions = []partitionLag{}
		for _, r := range rows[i] {
			end, err := lookupEnd(ends, r.Topic, r.Partition)
			switch {
			case err != nil && r.Error == nil:
				r.Error = errString(fmt.Errorf("log end offset: %w", err))
			case err == nil:
				r.LogEndOffset = &end
				if r.CurrentOffset != nil {
					lag := end - *r.CurrentOffset
					r.Lag = &lag
					g.TotalLag += lag
				}
			}
			g.Partitions = append(g.Partitions, *r)
		}
		sort.Slice(g.Partitions, func(a, b int) bool {
			pa, pb := g.Partitions[a], g.Partitions[b]
			if pa.Topic != pb.Topic {
				return pa.Topic < pb.Topic
			}
			return pa.Partition < pb.Partition
		})
	}
	return problems, nil
}

var errNotListed = errors.New("not in the list offsets response")

func lookupEnd(ends kadm.ListedOffsets, topic string, part int32) (int64, error) {
	ps := ends[topic]
	if o, ok := ps[part]; ok {
		return o.Offset, o.Err
	}
	if o, ok := ps[-1]; ok && o.Err != nil { // kadm's marker for a missing topic
		return 0, o.Err
	}
	return 0, errNotListed
}

func fromTopicsSet(s kadm.TopicsSet) []topicPartitions {
	out := []topicPartitions{}
	for _, tp := range s.Sorted() {
		out = append(out, topicPartitions{Topic: tp.Topic, Partitions: tp.Partitions})
	}
	return out
}

// sortMembers orders members by instance id, then member id, so output is
// stable across runs (brokers return members in map order).
func sortMembers(ms []groupMember) {
	sort.SliceStable(ms, func(i, j int) bool {
		a, b := ms[i], ms[j]
		if (a.InstanceID == nil) != (b.InstanceID == nil) {
			return a.InstanceID != nil
		}
		if a.InstanceID != nil && *a.InstanceID != *b.InstanceID {
			return *a.InstanceID < *b.InstanceID
		}
		return a.MemberID < b.MemberID
	})
}

func errWithMessage(err error, msg *string) string {
	if msg != nil && *msg != "" {
		return fmt.Sprintf("%v (%s)", err, *msg)
	}
	return err.Error()
}

func errString(err error) *string {
	s := err.Error()
	return &s
}
