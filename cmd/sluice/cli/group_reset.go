package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
)

const groupResetUsage = `usage: sluice group reset-offsets GROUP (--topic T[:P,...]... | --all-topics)
           (--to-earliest | --to-latest | --to-offset N | --to-datetime TIME | --shift-by N)
           [--dry-run | --execute] [flags]

Moves the committed offsets of GROUP, like kafka-consumer-groups.sh
--reset-offsets, and prints one row per partition:

  GROUP TOPIC PARTITION OLD-OFFSET NEW-OFFSET

OLD-OFFSET is "-" where the group has committed nothing. Every new offset is
clamped to the partition's range [log start offset, log end offset]. By
default nothing is changed (--dry-run); --execute commits the new offsets.
The group must be empty (no running consumers): Kafka refuses offset
changes to active groups. A group that does not exist yet is created with
the given offsets, as with Kafka.

flags:
  --topic T[:P,P...]       partitions to reset: every partition of T, or the
                           listed ones (repeatable)
  --all-topics             every partition the group has committed offsets for
  --to-earliest            to the log start offset
  --to-latest              to the log end offset
  --to-offset N            to offset N
  --to-datetime TIME       to the first offset at or after TIME, an RFC 3339
                           time (2024-05-01T12:00:00Z) or @UNIX_MILLIS
  --shift-by N             by N from the committed offset (negative: back);
                           every partition needs a committed offset
  --dry-run                only show the new offsets (the default)
  --execute                commit the new offsets
` + commonFlagsUsage

// resetMethod is the one --to-*/--shift-by option given.
type resetMethod struct {
	kind   string // "earliest", "latest", "offset", "datetime" or "shift"
	n      int64  // the offset of "offset", the distance of "shift"
	millis int64  // the time of "datetime"
}

// resetRow is one partition of the reset; its json tags are the --json
// interface.
type resetRow struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	OldOffset *int64 `json:"old_offset"`
	NewOffset int64  `json:"new_offset"`
}

type resetResult struct {
	Group      string     `json:"group"`
	Executed   bool       `json:"executed"`
	Partitions []resetRow `json:"partitions"`
}

// parseResetMethod checks that exactly one reset method was given.
func parseResetMethod(fs *flag.FlagSet, earliest, latest bool, offset, shift int64, datetime string) (resetMethod, error) {
	var given []string
	var m resetMethod
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "to-earliest":
			if earliest {
				given, m = append(given, "--to-earliest"), resetMethod{kind: "earliest"}
			}
		case "to-latest":
			if latest {
				given, m = append(given, "--to-latest"), resetMethod{kind: "latest"}
			}
		case "to-offset":
			given, m = append(given, "--to-offset"), resetMethod{kind: "offset", n: offset}
		case "shift-by":
			given, m = append(given, "--shift-by"), resetMethod{kind: "shift", n: shift}
		case "to-datetime":
			given, m = append(given, "--to-datetime"), resetMethod{kind: "datetime"}
		}
	})
	switch {
	case len(given) == 0:
		return m, usagef("say where to: one of --to-earliest, --to-latest, --to-offset, --to-datetime, --shift-by")
	case len(given) > 1:
		return m, usagef("%s cannot be combined: give exactly one", strings.Join(given, " and "))
	case m.kind == "offset" && m.n < 0:
		return m, usagef("--to-offset must not be negative, got %d", m.n)
	case m.kind == "datetime":
		ms, err := parseTime(datetime)
		if err != nil {
			return m, usagef("--to-datetime: %v", err)
		}
		m.millis = ms
	}
	return m, nil
}

// newOffset computes where a partition goes. committed is nil when the
// group has no offset there; byTime is the partition's offset for the
// --to-datetime time.
func (m resetMethod) newOffset(tp topicPart, committed *int64, b bounds, byTime int64) (int64, error) {
	switch m.kind {
	case "earliest":
		return b.start, nil
	case "latest":
		return b.end, nil
	case "offset":
		return b.clamp(m.n), nil
	case "datetime":
		return b.clamp(byTime), nil
	case "shift":
		if committed == nil {
			return 0, fmt.Errorf("cannot shift %s: the group has no committed offset there", tp)
		}
		return b.clamp(*committed + m.n), nil
	}
	return 0, fmt.Errorf("unknown reset method %q", m.kind)
}

func runGroupResetOffsets(args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("group reset-offsets")
	var topics topicSpecFlag
	fs.Var(&topics, "topic", "")
	allTopics := fs.Bool("all-topics", false, "")
	earliest := fs.Bool("to-earliest", false, "")
	latest := fs.Bool("to-latest", false, "")
	toOffset := fs.Int64("to-offset", 0, "")
	datetime := fs.String("to-datetime", "", "")
	shift := fs.Int64("shift-by", 0, "")
	dryRun := fs.Bool("dry-run", false, "")
	execute := fs.Bool("execute", false, "")
	names, err := parseArgs(fs, args)
	if err != nil {
		return handleParseError(err, groupResetUsage, stdout, stderr)
	}
	method, err := parseResetMethod(fs, *earliest, *latest, *toOffset, *shift, *datetime)
	switch {
	case len(names) != 1:
		err = usagef("name exactly one GROUP, got %d", len(names))
	case err != nil:
	case len(topics.order) == 0 && !*allTopics:
		err = usagef("say which partitions: --topic TOPIC[:P,...] or --all-topics")
	case len(topics.order) > 0 && *allTopics:
		err = usagef("--topic and --all-topics cannot be combined")
	case *dryRun && *execute:
		err = usagef("--dry-run and --execute cannot be combined")
	}
	if err != nil {
		return reportUsage(stderr, groupResetUsage, err)
	}
	group := names[0]

	return runWithClient(cf, groupResetUsage, stderr, func(ctx context.Context, c *client) error {
		res, err := resetOffsets(ctx, c, group, &topics, *allTopics, method, *execute)
		if err != nil {
			return err
		}
		if cf.json {
			err = writeJSON(stdout, res)
		} else {
			err = printReset(stdout, res)
		}
		if err == nil && !res.Executed {
			fmt.Fprintln(stderr, "dry run: nothing was changed; add --execute to commit these offsets")
		}
		return err
	})
}

// resetOffsets computes the new offsets and, if execute, commits them. It
// commits all or nothing of what it computed: any partition that cannot be
// computed fails the command before the commit.
func resetOffsets(ctx context.Context, c *client, group string, topics *topicSpecFlag, allTopics bool, m resetMethod, execute bool) (resetResult, error) {
	res := resetResult{Group: group, Executed: execute, Partitions: []resetRow{}}
	desc, problems, err := describeGroups(ctx, c, []string{group})
	if err != nil {
		return res, err
	}
	if len(problems) > 0 {
		return res, errors.New(problems[0])
	}
	committed := make(map[topicPart]int64)
	if len(desc.Groups) == 1 {
		g := desc.Groups[0]
		if len(g.Members) > 0 || g.State != "Empty" {
			return res, fmt.Errorf("group %q is %s with %d active member(s): offsets can only be reset while the group is empty; stop its consumers first",
				group, orDash(g.State), len(g.Members))
		}
		for _, p := range g.Partitions {
			if p.CurrentOffset != nil {
				committed[topicPart{p.Topic, p.Partition}] = *p.CurrentOffset
			}
		}
	} else if allTopics {
		return res, fmt.Errorf("group %q not found", group)
	}

	var tps []topicPart
	if allTopics {
		for tp := range committed {
			tps = append(tps, tp)
		}
		if len(tps) == 0 {
			return res, fmt.Errorf("group %q has no committed offsets to reset; name partitions with --topic", group)
		}
		sortTopicParts(tps)
		// The topics may have been deleted since the group committed.
		if _, err := lookupTopics(ctx, c, topicsOf(tps)); err != nil {
			return res, err
		}
	} else if tps, err = topics.resolve(ctx, c); err != nil {
		return res, err
	}

	names := topicsOf(tps)
	bs, err := listBounds(ctx, c, names)
	if err != nil {
		return res, err
	}
	var byTime map[topicPart]int64
	if m.kind == "datetime" {
		if byTime, err = listAfterMilli(ctx, c, m.millis, names); err != nil {
			return res, err
		}
	}
	var errs []string
	var offsets kadm.Offsets
	for _, tp := range tps {
		var old *int64
		if o, ok := committed[tp]; ok {
			old = &o
		}
		b, ok := bs[tp]
		if !ok {
			return res, fmt.Errorf("no offsets listed for %s", tp)
		}
		n, err := m.newOffset(tp, old, b, byTime[tp])
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		res.Partitions = append(res.Partitions, resetRow{Topic: tp.topic, Partition: tp.partition, OldOffset: old, NewOffset: n})
		offsets.Add(kadm.Offset{Topic: tp.topic, Partition: tp.partition, At: n, LeaderEpoch: -1})
	}
	if len(errs) > 0 {
		msg := errs[0]
		if len(errs) > 1 {
			msg += " (and " + plural(int64(len(errs)-1), "more partition") + ")"
		}
		return res, errors.New(msg + "; nothing was changed")
	}
	if !execute {
		return res, nil
	}
	resps, err := c.adm.CommitOffsets(ctx, group, offsets)
	if err != nil {
		return res, fmt.Errorf("committing offsets of group %q: %w", group, err)
	}
	if err := resps.Error(); err != nil {
		// Most likely a consumer joined between the check and the commit.
		return res, fmt.Errorf("committing offsets of group %q: %w (some partitions may have been reset; check with group describe)", group, err)
	}
	return res, nil
}

func printReset(w io.Writer, res resetResult) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "GROUP\tTOPIC\tPARTITION\tOLD-OFFSET\tNEW-OFFSET")
	for _, r := range res.Partitions {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\n", res.Group, r.Topic, r.Partition, formatOffset(r.OldOffset), r.NewOffset)
	}
	return tw.Flush()
}
