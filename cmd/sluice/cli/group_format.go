package cli

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// printGroupDescriptions renders "group describe" for people: a header
// block per group, its members, then the offsets table laid out like
// kafka-consumer-groups.sh --describe so the figures read the same.
func printGroupDescriptions(w io.Writer, groups []describedGroup) error {
	for i, g := range groups {
		if i > 0 {
			if _, err := fmt.Fprintln(w); err != nil {
				return err
			}
		}
		if err := printGroupDescription(w, g); err != nil {
			return err
		}
	}
	return nil
}

func printGroupDescription(w io.Writer, g describedGroup) error {
	tw := newTable(w)
	fmt.Fprintf(tw, "Group:\t%s\n", g.GroupID)
	fmt.Fprintf(tw, "State:\t%s\n", orDash(g.State))
	fmt.Fprintf(tw, "Type:\t%s\n", g.Type)
	fmt.Fprintf(tw, "Protocol type:\t%s\n", orDash(g.ProtocolType))
	fmt.Fprintf(tw, "Assignor:\t%s\n", orDash(g.Assignor))
	fmt.Fprintf(tw, "Coordinator:\t%s\n", g.Coordinator)
	epoch := "-"
	if g.Epoch != nil {
		epoch = strconv.Itoa(int(*g.Epoch))
		if g.AssignmentEpoch != nil {
			epoch += fmt.Sprintf(" (assignment epoch %d)", *g.AssignmentEpoch)
		}
	}
	fmt.Fprintf(tw, "Epoch:\t%s\n", epoch)
	fmt.Fprintf(tw, "Members:\t%d\n", len(g.Members))
	fmt.Fprintf(tw, "Total lag:\t%d\n", g.TotalLag)
	if err := tw.Flush(); err != nil {
		return err
	}

	if len(g.Members) > 0 {
		fmt.Fprintln(w)
		tw = newTable(w)
		fmt.Fprintln(tw, "MEMBER-ID\tINSTANCE-ID\tCLIENT-ID\tHOST\tEPOCH\tASSIGNMENT")
		for _, m := range g.Members {
			instance, memberEpoch := "-", "-"
			if m.InstanceID != nil {
				instance = *m.InstanceID
			}
			if m.MemberEpoch != nil {
				memberEpoch = strconv.Itoa(int(*m.MemberEpoch))
			}
			assignment := formatAssignment(m.Assignment)
			if m.TargetAssignment != nil && !sameAssignment(m.Assignment, m.TargetAssignment) {
				assignment += " (target " + formatAssignment(m.TargetAssignment) + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n",
				m.MemberID, instance, orDash(m.ClientID), orDash(m.Host), memberEpoch, assignment)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	fmt.Fprintln(w)
	if len(g.Partitions) == 0 {
		_, err := fmt.Fprintln(w, "No partitions assigned and no offsets committed.")
		return err
	}
	tw = newTable(w)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCURRENT-OFFSET\tLOG-END-OFFSET\tLAG\tMEMBER-ID\tCLIENT-ID\tHOST")
	for _, p := range g.Partitions {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n",
			p.Topic, p.Partition, formatOffset(p.CurrentOffset), formatOffset(p.LogEndOffset),
			formatOffset(p.Lag), orDash(p.MemberID), orDash(p.ClientID), orDash(p.Host))
	}
	return tw.Flush()
}

func formatOffset(o *int64) string {
	if o == nil {
		return "-"
	}
	return strconv.FormatInt(*o, 10)
}

// formatAssignment renders "orders:0,1,2 payments:3" so a member's whole
// assignment fits in one cell.
func formatAssignment(tps []topicPartitions) string {
	if len(tps) == 0 {
		return "-"
	}
	parts := make([]string, 0, len(tps))
	for _, tp := range tps {
		ps := make([]string, len(tp.Partitions))
		for i, p := range tp.Partitions {
			ps[i] = strconv.Itoa(int(p))
		}
		parts = append(parts, tp.Topic+":"+strings.Join(ps, ","))
	}
	return strings.Join(parts, " ")
}

func sameAssignment(a, b []topicPartitions) bool {
	return slices.EqualFunc(a, b, func(x, y topicPartitions) bool {
		return x.Topic == y.Topic && slices.Equal(x.Partitions, y.Partitions)
	})
}
