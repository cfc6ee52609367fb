package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const groupDeleteUsage = `usage: sluice group delete GROUP... [flags]

Deletes each GROUP with its committed offsets. Only empty groups (no
running consumers) can be deleted. Groups that are not empty, do not exist
or could not be deleted are reported on stderr, one line each, and make the
exit code 1; the others are still deleted.

flags:
` + commonFlagsUsage

const groupDeleteOffsetsUsage = `usage: sluice group delete-offsets GROUP --topic T[:P,...]... [flags]

Deletes the committed offsets of GROUP for the given partitions (every
partition of T, or the listed ones), so that its consumers start from their
reset policy there. The broker refuses partitions of topics the group's
running consumers are subscribed to. Partitions that could not be deleted
are reported on stderr and make the exit code 1.

flags:
  --topic T[:P,P...]       partitions whose offsets to delete (repeatable)
` + commonFlagsUsage

// groupError is one group a command could not act on; its json tags are
// part of the --json interface.
type groupError struct {
	Group string `json:"group"`
	Error string `json:"error"`
}

type groupDeleteResult struct {
	Groups   []string     `json:"groups"`
	NotFound []string     `json:"not_found"`
	Errors   []groupError `json:"errors"`
}

func runGroupDelete(args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("group delete")
	names, err := parseArgs(fs, args)
	if err != nil {
		return handleParseError(err, groupDeleteUsage, stdout, stderr)
	}
	if len(names) == 0 {
		return reportUsage(stderr, groupDeleteUsage, usagef("name at least one GROUP to delete"))
	}
	names = dedupe(names)

	return runWithClient(cf, groupDeleteUsage, stderr, func(ctx context.Context, c *client) error {
		resps, err := c.adm.DeleteGroups(ctx, names...)
		failed := make(map[string]string)
		if err != nil {
			// A coordinator that could not be reached fails its groups
			// only; the others were still deleted.
			var se *kadm.ShardErrors
			if !errors.As(err, &se) || ctx.Err() != nil {
				return err
			}
			for _, e := range se.Errs {
				if req, ok := e.Req.(*kmsg.DeleteGroupsRequest); ok {
					for _, n := range req.Groups {
						failed[n] = e.Err.Error()
					}
				}
			}
		}
		res := groupDeleteResult{Groups: []string{}, NotFound: []string{}, Errors: []groupError{}}
		for _, n := range names {
			r, ok := resps[n]
			switch {
			case failed[n] != "":
				res.Errors = append(res.Errors, groupError{n, failed[n]})
			case !ok:
				res.Errors = append(res.Errors, groupError{n, "missing from the broker's response"})
			case errors.Is(r.Err, kerr.GroupIDNotFound):
				res.NotFound = append(res.NotFound, n)
			case errors.Is(r.Err, kerr.NonEmptyGroup):
				res.Errors = append(res.Errors, groupError{n, "not empty: it has running consumers; stop them first"})
			case r.Err != nil:
				res.Errors = append(res.Errors, groupError{n, errWithMessage(r.Err, &r.ErrMessage)})
			default:
				res.Groups = append(res.Groups, n)
			}
		}
		if cf.json {
			err = writeJSON(stdout, res)
		} else if len(res.Groups) > 0 {
			tw := newTable(stdout)
			fmt.Fprintln(tw, "GROUP\tSTATUS")
			for _, g := range res.Groups {
				fmt.Fprintf(tw, "%s\tdeleted\n", g)
			}
			err = tw.Flush()
		}
		if err != nil {
			return err
		}
		for _, n := range res.NotFound {
			fmt.Fprintf(stderr, "sluice: group %q not found\n", n)
		}
		for _, e := range res.Errors {
			fmt.Fprintf(stderr, "sluice: group %q: %s\n", e.Group, oneLine(e.Error))
		}
		if len(res.NotFound) > 0 || len(res.Errors) > 0 {
			return errReported
		}
		return nil
	})
}

type offsetDeleted struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

type offsetDeleteError struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Error     string `json:"error"`
}

type groupDeleteOffsetsResult struct {
	Group      string              `json:"group"`
	Partitions []offsetDeleted     `json:"partitions"`
	Errors     []offsetDeleteError `json:"errors"`
}

func runGroupDeleteOffsets(args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("group delete-offsets")
	var topics topicSpecFlag
	fs.Var(&topics, "topic", "")
	names, err := parseArgs(fs, args)
	if err != nil {
		return handleParseError(err, groupDeleteOffsetsUsage, stdout, stderr)
	}
	switch {
	case len(names) != 1:
		err = usagef("name exactly one GROUP, got %d", len(names))
	case len(topics.order) == 0:
		err = usagef("say which offsets: --topic TOPIC[:P,...]")
	}
	if err != nil {
		return reportUsage(stderr, groupDeleteOffsetsUsage, err)
	}
	group := names[0]

	return runWithClient(cf, groupDeleteOffsetsUsage, stderr, func(ctx context.Context, c *client) error {
		tps, err := topics.resolve(ctx, c)
		if err != nil {
			return err
		}
		set := make(kadm.TopicsSet)
		for _, tp := range tps {
			set.Add(tp.topic, tp.partition)
		}
		resps, err := c.adm.DeleteOffsets(ctx, group, set)
		switch {
		case errors.Is(err, kerr.GroupIDNotFound):
			return fmt.Errorf("group %q not found", group)
		case errors.Is(err, kerr.NonEmptyGroup):
			return fmt.Errorf("group %q is not empty and is subscribed to these topics; stop its consumers first", group)
		case err != nil:
			return fmt.Errorf("group %q: %w", group, err)
		}
		res := groupDeleteOffsetsResult{Group: group, Partitions: []offsetDeleted{}, Errors: []offsetDeleteError{}}
		for _, tp := range tps {
			perr, ok := resps.Lookup(tp.topic, tp.partition)
			switch {
			case !ok:
				res.Errors = append(res.Errors, offsetDeleteError{tp.topic, tp.partition, "missing from the broker's response"})
			case errors.Is(perr, kerr.GroupSubscribedToTopic):
				res.Errors = append(res.Errors, offsetDeleteError{tp.topic, tp.partition, "the group's consumers are subscribed to the topic; stop them first"})
			case perr != nil:
				res.Errors = append(res.Errors, offsetDeleteError{tp.topic, tp.partition, perr.Error()})
			default:
				res.Partitions = append(res.Partitions, offsetDeleted{tp.topic, tp.partition})
			}
		}
		if cf.json {
			err = writeJSON(stdout, res)
		} else if len(res.Partitions) > 0 {
			tw := newTable(stdout)
			fmt.Fprintln(tw, "GROUP\tTOPIC\tPARTITION\tSTATUS")
			for _, p := range res.Partitions {
				fmt.Fprintf(tw, "%s\t%s\t%d\tdeleted\n", group, p.Topic, p.Partition)
			}
			err = tw.Flush()
		}
		if err != nil {
			return err
		}
		for _, e := range res.Errors {
			fmt.Fprintf(stderr, "sluice: group %q, %s/%d: %s\n", group, e.Topic, e.Partition, oneLine(e.Error))
		}
		if len(res.Errors) > 0 {
			return errReported
		}
		return nil
	})
}
