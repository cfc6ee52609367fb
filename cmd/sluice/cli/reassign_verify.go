package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// verifiedPartition is one partition of --verify; its json tags are part
// of the --json interface.
type verifiedPartition struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Status    string  `json:"status"` // "completed", "in-progress" or "differs"
	Replicas  []int32 `json:"replicas"`
	Target    []int32 `json:"target"`
}

type verifyResult struct {
	Partitions       []verifiedPartition `json:"partitions"`
	Complete         bool                `json:"complete"` // no partition in progress
	ThrottlesCleared bool                `json:"throttles_cleared"`
}

func reassignVerify(ctx context.Context, c *client, asJSON bool, stdout io.Writer, plan reassignmentPlan, preserve bool) error {
	topics := planTopics(plan)
	set := make(kadm.TopicsSet)
	for _, pp := range plan.Partitions {
		set.Add(pp.Topic, pp.Partition)
	}
	ongoing, err := c.adm.ListPartitionReassignments(ctx, set)
	if err != nil {
		return fmt.Errorf("listing reassignments: %w", err)
	}
	current, md, err := currentAssignment(ctx, c, topics)
	if err != nil {
		return err
	}
	res := verifyResult{Partitions: []verifiedPartition{}, Complete: true}
	for _, pp := range plan.Partitions {
		parts := current[pp.Topic]
		if int(pp.Partition) >= len(parts) {
			return fmt.Errorf("partition %s does not exist", pp.name())
		}
		_, moving := ongoing[pp.Topic][pp.Partition]
		st := moveState(moving, parts[pp.Partition], pp.Replicas)
		res.Partitions = append(res.Partitions, verifiedPartition{Topic: pp.Topic, Partition: pp.Partition, Status: st,
			Replicas: nonNil(parts[pp.Partition]), Target: pp.Replicas})
		if moving {
			res.Complete = false
		}
	}
	if !asJSON {
		fmt.Fprintln(stdout, "Status of partition reassignment:")
		for _, p := range res.Partitions {
			name := fmt.Sprintf("%s-%d", p.Topic, p.Partition)
			switch p.Status {
			case moveInProgress:
				fmt.Fprintf(stdout, "Reassignment of partition %s is still in progress.\n", name)
			case moveCompleted:
				fmt.Fprintf(stdout, "Reassignment of partition %s is completed.\n", name)
			default:
				fmt.Fprintf(stdout, "There is no active reassignment of partition %s, but replica set is %s rather than %s.\n",
					name, formatNodes(p.Replicas), formatNodes(p.Target))
			}
		}
	}
	// Kafka's tool lifts the throttles once nothing of the plan moves
	// any more, so a forgotten throttle cannot outlive the reassignment.
	if res.Complete && !preserve {
		if err := clearThrottles(ctx, c, stdout, asJSON, md.Brokers.NodeIDs(), topics); err != nil {
			return err
		}
		res.ThrottlesCleared = true
	}
	if asJSON {
		return writeJSON(stdout, res)
	}
	return nil
}

type cancelResult struct {
	Cancelled        []partitionRef   `json:"cancelled"`
	NotActive        []partitionRef   `json:"not_active"`
	Errors           []partitionError `json:"errors"`
	ThrottlesCleared bool             `json:"throttles_cleared"`
}

func reassignCancel(ctx context.Context, c *client, asJSON bool, stdout, stderr io.Writer, plan reassignmentPlan, preserve bool) error {
	var req kadm.AlterPartitionAssignmentsReq
	for _, pp := range plan.Partitions {
		req.CancelAssign(pp.Topic, pp.Partition)
	}
	resps, err := c.adm.AlterPartitionAssignments(ctx, req)
	if err != nil {
		return fmt.Errorf("cancelling the reassignment: %w", err)
	}
	res := cancelResult{Cancelled: []partitionRef{}, NotActive: []partitionRef{}, Errors: []partitionError{}}
	for _, pp := range plan.Partitions {
		r, ok := resps[pp.Topic][pp.Partition]
		ref := partitionRef{pp.Topic, pp.Partition}
		switch {
		case !ok:
			res.Errors = append(res.Errors, partitionError{pp.Topic, pp.Partition, "missing from the broker's response"})
		case errors.Is(r.Err, kerr.NoReassignmentInProgress):
			res.NotActive = append(res.NotActive, ref)
		case r.Err != nil:
			res.Errors = append(res.Errors, partitionError{pp.Topic, pp.Partition, errWithMessage(r.Err, &r.ErrMessage)})
		default:
			res.Cancelled = append(res.Cancelled, ref)
		}
	}
	if !asJSON {
		if len(res.Cancelled) > 0 {
			fmt.Fprintf(stdout, "Successfully cancelled partition reassignments for: %s\n", joinRefs(res.Cancelled))
		} else if len(res.Errors) == 0 {
			fmt.Fprintln(stdout, "None of the specified partition moves are active.")
		}
	}
	if !preserve {
		md, err := c.adm.BrokerMetadata(ctx)
		if err != nil {
			return fmt.Errorf("listing brokers: %w", err)
		}
		if err := clearThrottles(ctx, c, stdout, asJSON, md.Brokers.NodeIDs(), planTopics(plan)); err != nil {
			return err
		}
		res.ThrottlesCleared = true
	}
	if asJSON {
		if err := writeJSON(stdout, res); err != nil {
			return err
		}
	}
	return reportPartitionErrors(stderr, res.Errors)
}
