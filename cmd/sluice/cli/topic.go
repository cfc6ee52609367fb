package cli

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

const topicUsage = `usage: sluice topic <subcommand> [flags]

subcommands:
  create           create topics
  list             list topics: partitions, replication factor, topic ID
  describe         show partitions, leaders, offsets and non-default configs
  delete           delete topics
  alter-config     set or delete a topic's config overrides
  add-partitions   grow a topic to a total number of partitions

Run "sluice topic <subcommand> --help" for its flags.
`

const topicCreateUsage = `usage: sluice topic create TOPIC... [flags]

Creates each TOPIC with the same settings and prints its topic ID,
partition count and replication factor. A topic that already exists is an
error unless --if-not-exists is given; it is then shown as it is, with
status "exists". Topics that could not be created are reported on stderr
and make the exit code 1; the others are still created.

flags:
  --partitions N           partitions of each topic (default: the broker's
                           num.partitions)
  --replication-factor N   replicas of each partition (default: the
                           broker's default.replication.factor)
  --replica-assignment LIST  place the replicas yourself, as kafka-topics.sh
                           takes it: partitions separated by commas, the
                           broker IDs of one partition by colons, the
                           preferred leader first; "1:2:3,2:3:1" is two
                           partitions of three replicas. Excludes
                           --partitions and --replication-factor.
  --config KEY=VALUE       topic config override, repeatable, e.g.
                           --config retention.ms=86400000
  --if-not-exists          accept topics that already exist
` + commonFlagsUsage

const topicDeleteUsage = `usage: sluice topic delete TOPIC... [flags]

Deletes each TOPIC and all its data. Topics that do not exist or could not
be deleted are reported on stderr and make the exit code 1; the others are
still deleted.

flags:
` + commonFlagsUsage

const topicAlterConfigUsage = `usage: sluice topic alter-config TOPIC [--set KEY=VALUE]... [--delete KEY]... [flags]

Changes only the named config overrides of TOPIC (IncrementalAlterConfigs);
the others stay as they are. A deleted override falls back to the broker's
default. The broker validates the change as a whole: if it rejects one
setting, nothing is changed.

flags:
  --set KEY=VALUE          set an override, repeatable; the value is taken
                           as is, commas included
  --delete KEY             remove an override (repeatable or comma-separated)
` + commonFlagsUsage

const topicAddPartitionsUsage = `usage: sluice topic add-partitions TOPIC --total N [flags]

Grows TOPIC to N partitions in total. Partitions can only be added: N must
be larger than the current count. Adding partitions changes which partition
a key maps to.

flags:
  --total N                the partition count TOPIC should end up with
` + commonFlagsUsage

func runTopic(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, topicUsage)
		return exitUsage
	}
	switch args[0] {
	case "create":
		return runTopicCreate(args[1:], stdout, stderr)
	case "list", "ls":
		return runTopicList(args[1:], stdout, stderr)
	case "describe":
		return runTopicDescribe(args[1:], stdout, stderr)
	case "delete":
		return runTopicDelete(args[1:], stdout, stderr)
	case "alter-config":
		return runTopicAlterConfig(args[1:], stdout, stderr)
	case "add-partitions":
		return runTopicAddPartitions(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, topicUsage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "sluice: unknown topic subcommand %q\n\n%s", args[0], topicUsage)
		return exitUsage
	}
}

// kvFlag collects repeatable KEY=VALUE flags in order. Unlike listFlag it
// does not split on commas: config values such as cleanup.policy=compact,delete
// contain them.
type kvFlag struct {
	keys   []string
	values map[string]string
}

func (f *kvFlag) String() string { return strings.Join(f.keys, ",") }

func (f *kvFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	k = strings.TrimSpace(k)
	if !ok || k == "" {
		return fmt.Errorf("%q is not KEY=VALUE", v)
	}
	if _, dup := f.values[k]; dup {
		return fmt.Errorf("%s given twice", k)
	}
	if f.values == nil {
		f.values = make(map[string]string)
	}
	f.keys = append(f.keys, k)
	f.values[k] = val
	return nil
}

func (f *kvFlag) configs() map[string]*string {
	if len(f.keys) == 0 {
		return nil
	}
	m := make(map[string]*string, len(f.keys))
	for _, k := range f.keys {
		m[k] = kadm.StringPtr(f.values[k])
	}
	return m
}

// topicIDString renders a topic ID as Kafka does (URL-safe base64 without
// padding), so it matches kafka-topics.sh and broker logs; kadm's own
// String uses standard base64 with padding. A broker without topic IDs
// sends zeros, shown as "".
func topicIDString(id [16]byte) string {
	if id == [16]byte{} {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(id[:])
}

// setAdminTimeout makes the broker-side wait of CreateTopics, DeleteTopics
// and CreatePartitions the command's own budget instead of kadm's 15s, so
// the broker gives up no later than we do.
func setAdminTimeout(c *client, d time.Duration) {
	c.adm.SetTimeoutMillis(int32(min(d.Milliseconds(), math.MaxInt32)))
}

// topicError is one topic a command could not act on; its json tags are
// part of the --json interface.
type topicError struct {
	Topic string `json:"topic"`
	Error string `json:"error"`
}

// topicFailure renders a per-topic broker error with the broker's own
// message, which says what was wrong (for example which config value).
func topicFailure(err error, msg string) string {
	return errWithMessage(err, &msg)
}

// reportTopicErrors prints one stderr line per failed topic after the
// successes went to stdout, and sets exit code 1 if there were any.
func reportTopicErrors(stderr io.Writer, notFound []string, errs []topicError) error {
	for _, n := range notFound {
		fmt.Fprintf(stderr, "sluice: topic %q not found\n", n)
	}
	for _, e := range errs {
		fmt.Fprintf(stderr, "sluice: topic %q: %s\n", e.Topic, oneLine(e.Error))
	}
	if len(notFound) > 0 || len(errs) > 0 {
		return errReported
	}
	return nil
}

// createdTopic is one row of "topic create". The counts are null only if
// an old broker's answer lacked them and metadata could not fill them in.
type createdTopic struct {
	Topic             string `json:"topic"`
	TopicID           string `json:"topic_id"`
	PartitionCount    *int32 `json:"partition_count"`
	ReplicationFactor *int32 `json:"replication_factor"`
	Status            string `json:"status"` // "created", or "exists" with --if-not-exists
}

type topicCreateResult struct {
	Topics []createdTopic `json:"topics"`
	Errors []topicError   `json:"errors"`
}

func runTopicCreate(args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("topic create")
	var cfgs kvFlag
	partitions := fs.Int("partitions", -1, "")
	rf := fs.Int("replication-factor", -1, "")
	ifNotExists := fs.Bool("if-not-exists", false, "")
	assignment := fs.String("replica-assignment", "", "")
	fs.Var(&cfgs, "config", "")
	names, err := parseArgs(fs, args)
	if err != nil {
		return handleParseError(err, topicCreateUsage, stdout, stderr)
	}
	var manual [][]int32
	if *assignment != "" {
		if manual, err = parseReplicaAssignment(*assignment); err != nil {
			return reportUsage(stderr, topicCreateUsage, err)
		}
		if *partitions != -1 || *rf != -1 {
			return reportUsage(stderr, topicCreateUsage, usagef("--replica-assignment excludes --partitions and --replication-factor"))
		}
	}
	switch {
	case len(names) == 0:
		return reportUsage(stderr, topicCreateUsage, usagef("name at least one TOPIC to create"))
	case *partitions == 0 || *partitions < -1 || *partitions > math.MaxInt32:
		return reportUsage(stderr, topicCreateUsage, usagef("--partitions must be positive (or -1 for the broker's default), got %d", *partitions))
	case *rf == 0 || *rf < -1 || *rf > math.MaxInt16:
		return reportUsage(stderr, topicCreateUsage, usagef("--replication-factor must be positive (or -1 for the broker's default), got %d", *rf))
	}
	names = dedupe(names) // brokers reject a request naming a topic twice

	return runWithClient(cf, topicCreateUsage, stderr, func(ctx context.Context, c *client) error {
		setAdminTimeout(c, cf.timeout)
		var resps kadm.CreateTopicResponses
		if manual != nil {
			resps, err = createAssigned(ctx, c, cf.timeout, manual, cfgs.configs(), names)
		} else {
			resps, err = c.adm.CreateTopics(ctx, int32(*partitions), int16(*rf), cfgs.configs(), names...)
		}
		if err != nil {
			return err
		}
		res := topicCreateResult{Topics: []createdTopic{}, Errors: []topicError{}}
		var incomplete []int // rows the response left without ID or counts
		for _, n := range names {
			r, ok := resps[n]
			switch {
			case !ok:
				res.Errors = append(res.Errors, topicError{n, "missing from the broker's response"})
				continue
			case errors.Is(r.Err, kerr.TopicAlreadyExists) && *ifNotExists:
				res.Topics = append(res.Topics, createdTopic{Topic: n, Status: "exists"})
				incomplete = append(incomplete, len(res.Topics)-1)
				continue
			case errors.Is(r.Err, kerr.TopicAlreadyExists):
				res.Errors = append(res.Errors, topicError{n, "already exists (--if-not-exists accepts that)"})
				continue
			case r.Err != nil:
				res.Errors = append(res.Errors, topicError{n, topicFailure(r.Err, r.ErrMessage)})
				continue
			}
			row := createdTopic{Topic: n, TopicID: topicIDString(r.ID), Status: "created"}
			// Brokers before CreateTopics v5 answer -1 for both counts.
			if r.NumPartitions > 0 {
				p, f := r.NumPartitions, int32(r.ReplicationFactor)
				row.PartitionCount, row.ReplicationFactor = &p, &f
			}
			res.Topics = append(res.Topics, row)
			if row.TopicID == "" || row.PartitionCount == nil {
				incomplete = append(incomplete, len(res.Topics)-1)
			}
		}
		var mdErr error
		if len(incomplete) > 0 {
			mdErr = fillCreated(ctx, c, res.Topics, incomplete)
		}
		if err := printCreated(stdout, cf.json, res); err != nil {
			return err
		}
		if mdErr != nil {
			fmt.Fprintf(stderr, "sluice: %s\n", oneLine("reading back topic details: "+mdErr.Error()))
		}
		if err := reportTopicErrors(stderr, nil, res.Errors); err != nil || mdErr != nil {
			return errReported
		}
		return nil
	})
}

// fillCreated completes rows from metadata: topics that existed already,
// and topics created on brokers whose CreateTopics answer predates IDs or
// counts.
func fillCreated(ctx context.Context, c *client, rows []createdTopic, idx []int) error {
	names := make([]string, len(idx))
	for i, j := range idx {
		names[i] = rows[j].Topic
	}
	md, err := c.adm.Metadata(ctx, names...)
	if err != nil {
		return err
	}
	var errs []string
	for _, j := range idx {
		td, ok := md.Topics[rows[j].Topic]
		switch {
		case !ok:
			errs = append(errs, fmt.Sprintf("topic %q: missing from the metadata response", rows[j].Topic))
			continue
		case td.Err != nil:
			errs = append(errs, fmt.Sprintf("topic %q: %v", rows[j].Topic, td.Err))
			continue
		}
		if rows[j].TopicID == "" {
			rows[j].TopicID = topicIDString(td.ID)
		}
		p, f := int32(len(td.Partitions)), int32(replicationFactor(td.Partitions))
		rows[j].PartitionCount, rows[j].ReplicationFactor = &p, &f
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

func printCreated(w io.Writer, asJSON bool, res topicCreateResult) error {
	if asJSON {
		return writeJSON(w, res)
	}
	if len(res.Topics) == 0 {
		return nil // every topic failed: stderr says why
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "TOPIC\tTOPIC-ID\tPARTITIONS\tREPLICATION-FACTOR\tSTATUS")
	for _, t := range res.Topics {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.Topic, orDash(t.TopicID),
			formatCount(t.PartitionCount), formatCount(t.ReplicationFactor), t.Status)
	}
	return tw.Flush()
}

func formatCount(n *int32) string {
	if n == nil {
		return "-"
	}
	return fmt.Sprint(*n)
}

type deletedTopic struct {
	Topic   string `json:"topic"`
	TopicID string `json:"topic_id"`
}

type topicDeleteResult struct {
	Topics   []deletedTopic `json:"topics"`
	NotFound []string       `json:"not_found"`
	Errors   []topicError   `json:"errors"`
}

func runTopicDelete(args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("topic delete")
	names, err := parseArgs(fs, args)
	if err != nil {
		return handleParseError(err, topicDeleteUsage, stdout, stderr)
	}
	if len(names) == 0 {
		return reportUsage(stderr, topicDeleteUsage, usagef("name at least one TOPIC to delete"))
	}
	names = dedupe(names)

	return runWithClient(cf, topicDeleteUsage, stderr, func(ctx context.Context, c *client) error {
		setAdminTimeout(c, cf.timeout)
		resps, err := c.adm.DeleteTopics(ctx, names...)
		if err != nil {
			return err
		}
		res := topicDeleteResult{Topics: []deletedTopic{}, NotFound: []string{}, Errors: []topicError{}}
		for _, n := range names {
			r, ok := resps[n]
			switch {
			case !ok:
				res.Errors = append(res.Errors, topicError{n, "missing from the broker's response"})
			case errors.Is(r.Err, kerr.UnknownTopicOrPartition):
				res.NotFound = append(res.NotFound, n)
			case r.Err != nil:
				res.Errors = append(res.Errors, topicError{n, topicFailure(r.Err, r.ErrMessage)})
			default:
				res.Topics = append(res.Topics, deletedTopic{Topic: n, TopicID: topicIDString(r.ID)})
			}
		}
		if cf.json {
			err = writeJSON(stdout, res)
		} else if len(res.Topics) > 0 {
			tw := newTable(stdout)
			fmt.Fprintln(tw, "TOPIC\tTOPIC-ID\tSTATUS")
			for _, t := range res.Topics {
				fmt.Fprintf(tw, "%s\t%s\tdeleted\n", t.Topic, orDash(t.TopicID))
			}
			err = tw.Flush()
		}
		if err != nil {
			return err
		}
		return reportTopicErrors(stderr, res.NotFound, res.Errors)
	})
}

// configChange is one requested operation of "topic alter-config".
type configChange struct {
	Name  string  `json:"name"`
	Op    string  `json:"op"`    // "set" or "delete"
	Value *string `json:"value"` // null for delete
}

type topicAlterResult struct {
	Topic   string         `json:"topic"`
	Changes []configChange `json:"changes"`
}

func runTopicAlterConfig(args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("topic alter-config")
	var sets kvFlag
	var dels listFlag
	fs.Var(&sets, "set", "")
	fs.Var(&dels, "delete", "")
	names, err := parseArgs(fs, args)
	if err != nil {
		return handleParseError(err, topicAlterConfigUsage, stdout, stderr)
	}
	if len(names) != 1 {
		return reportUsage(stderr, topicAlterConfigUsage, usagef("name exactly one TOPIC, got %d", len(names)))
	}
	if len(sets.keys) == 0 && len(dels) == 0 {
		return reportUsage(stderr, topicAlterConfigUsage, usagef("nothing to change: give --set KEY=VALUE or --delete KEY"))
	}
	dels = listFlag(dedupe(dels))
	for _, k := range dels {
		if _, ok := sets.values[k]; ok {
			return reportUsage(stderr, topicAlterConfigUsage, usagef("%s is both set and deleted", k))
		}
	}
	name := names[0]
	var ops []kadm.AlterConfig
	res := topicAlterResult{Topic: name, Changes: []configChange{}}
	for _, k := range sets.keys {
		v := sets.values[k]
		ops = append(ops, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: &v})
		res.Changes = append(res.Changes, configChange{Name: k, Op: "set", Value: &v})
	}
	for _, k := range dels {
		ops = append(ops, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
		res.Changes = append(res.Changes, configChange{Name: k, Op: "delete"})
	}

	return runWithClient(cf, topicAlterConfigUsage, stderr, func(ctx context.Context, c *client) error {
		resps, err := c.adm.AlterTopicConfigs(ctx, ops, name)
		if err != nil {
			return err
		}
		var r *kadm.AlterConfigsResponse
		for i := range resps {
			if resps[i].Name == name {
				r = &resps[i]
			}
		}
		if r == nil {
			return fmt.Errorf("topic %q: missing from the broker's response", name)
		}
		if err := singleTopicError(name, r.Err, r.ErrMessage); err != nil {
			return err
		}
		// The changes as requested rather than read back: a describe right
		// after the alter may still see the old values on a Kafka cluster.
		if cf.json {
			return writeJSON(stdout, res)
		}
		tw := newTable(stdout)
		fmt.Fprintln(tw, "TOPIC\tCONFIG\tCHANGE\tVALUE")
		for _, ch := range res.Changes {
			val := "-"
			if ch.Value != nil {
				val = *ch.Value
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, ch.Name, ch.Op, val)
		}
		return tw.Flush()
	})
}

// singleTopicError turns the answer of a single-topic command into its
// error: "not found" for an unknown topic, else the broker's code and
// message.
func singleTopicError(name string, err error, msg string) error {
	switch {
	case errors.Is(err, kerr.UnknownTopicOrPartition):
		return fmt.Errorf("topic %q not found", name)
	case err != nil:
		return fmt.Errorf("topic %q: %s", name, topicFailure(err, msg))
	}
	return nil
}

type topicPartitionsResult struct {
	Topic          string `json:"topic"`
	PartitionCount int32  `json:"partition_count"`
}

func runTopicAddPartitions(args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("topic add-partitions")
	total := fs.Int("total", 0, "")
	names, err := parseArgs(fs, args)
	if err != nil {
		return handleParseError(err, topicAddPartitionsUsage, stdout, stderr)
	}
	if len(names) != 1 {
		return reportUsage(stderr, topicAddPartitionsUsage, usagef("name exactly one TOPIC, got %d", len(names)))
	}
	if *total <= 0 || *total > math.MaxInt32 {
		return reportUsage(stderr, topicAddPartitionsUsage, usagef("--total N is required and must be positive"))
	}
	name := names[0]

	return runWithClient(cf, topicAddPartitionsUsage, stderr, func(ctx context.Context, c *client) error {
		setAdminTimeout(c, cf.timeout)
		resps, err := c.adm.UpdatePartitions(ctx, *total, name)
		if err != nil {
			return err
		}
		r, ok := resps[name]
		if !ok {
			return fmt.Errorf("topic %q: missing from the broker's response", name)
		}
		if err := singleTopicError(name, r.Err, r.ErrMessage); err != nil {
			return err
		}
		res := topicPartitionsResult{Topic: name, PartitionCount: int32(*total)}
		if cf.json {
			return writeJSON(stdout, res)
		}
		tw := newTable(stdout)
		fmt.Fprintln(tw, "TOPIC\tPARTITIONS")
		fmt.Fprintf(tw, "%s\t%d\n", res.Topic, res.PartitionCount)
		return tw.Flush()
	})
}
