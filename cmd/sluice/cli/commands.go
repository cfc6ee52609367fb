package cli

// The command table: every command, subcommand and flag of the sluice
// binary, in one place, for the shell completion scripts to be generated
// from. Tests check it against each command's --help text and flag set,
// so a flag added to a command without being added here fails the build's
// tests rather than silently missing from completion.

// flagSpec is one flag as completion needs it.
type flagSpec struct {
	name   string   // with its dashes: "--brokers", "-e"
	value  bool     // takes a value (the next word)
	values []string // the values to offer, when they are a fixed set
	files  bool     // the value is a file name
}

// cmdSpec is a command, or a subcommand of one.
type cmdSpec struct {
	name  string
	flags []flagSpec
	args  []string // fixed positional words to offer (completion's shells)
	subs  []cmdSpec
}

func boolFlag(name string) flagSpec  { return flagSpec{name: name} }
func valueFlag(name string) flagSpec { return flagSpec{name: name, value: true} }
func fileFlag(name string) flagSpec  { return flagSpec{name: name, value: true, files: true} }
func enumFlag(name string, values ...string) flagSpec {
	return flagSpec{name: name, value: true, values: values}
}

// withCommon appends the flags of newFlagSet that every cluster-facing
// command takes.
func withCommon(fs ...flagSpec) []flagSpec {
	return append(fs, valueFlag("--brokers"), valueFlag("--timeout"), boolFlag("--json"))
}

var groupStateNames = []string{"Stable", "Empty", "PreparingRebalance", "CompletingRebalance", "Dead", "Assigning", "Reconciling"}

// perfModes are the modes of "sluice perf" (package perf parses them).
func perfModes() []cmdSpec {
	common := []flagSpec{valueFlag("--brokers"), valueFlag("--topic"), boolFlag("--json"), valueFlag("--records"),
		valueFlag("--duration"), valueFlag("--clients"), valueFlag("--warmup"), valueFlag("--timeout")}
	producer := append(append([]flagSpec(nil), common...), valueFlag("--record-size"), valueFlag("--compressibility"),
		valueFlag("--partitions"), boolFlag("--create"), enumFlag("--acks", "all", "1", "0"),
		enumFlag("--compression", "none", "gzip", "snappy", "lz4", "zstd"), boolFlag("--idempotent"), valueFlag("--linger"),
		valueFlag("--batch-bytes"), valueFlag("--max-inflight"), valueFlag("--max-buffered"))
	return []cmdSpec{
		{name: "produce", flags: producer},
		{name: "consume", flags: append(append([]flagSpec(nil), common...), boolFlag("--raw"), valueFlag("--fetch-max-bytes"),
			valueFlag("--partition-max-bytes"), enumFlag("--from", "earliest", "latest"))},
		{name: "e2e", flags: append(append([]flagSpec(nil), producer...), valueFlag("--rate"))},
		// rtt is one client with one request in flight: no --clients.
		{name: "rtt", flags: []flagSpec{valueFlag("--brokers"), valueFlag("--topic"), boolFlag("--json"), valueFlag("--records"),
			valueFlag("--duration"), valueFlag("--warmup"), valueFlag("--timeout"), valueFlag("--record-size"),
			boolFlag("--create"), valueFlag("--kinds"), valueFlag("--group")}},
	}
}

// commandTable lists the commands in the order "sluice help" shows them.
// broker and engines are run by package main; they are here so that
// completion covers the whole binary.
var commandTable = []cmdSpec{
	{name: "broker", flags: []flagSpec{fileFlag("--config"), valueFlag("--set"), enumFlag("--engine", "auto", "uring", "std"), enumFlag("--log-format", "text", "json")}},
	{name: "engines"},
	{name: "topic", subs: []cmdSpec{
		{name: "create", flags: withCommon(valueFlag("--partitions"), valueFlag("--replication-factor"), valueFlag("--replica-assignment"),
			valueFlag("--config"), boolFlag("--if-not-exists"))},
		{name: "list", flags: withCommon(boolFlag("--internal"))},
		{name: "describe", flags: withCommon(boolFlag("--under-replicated-partitions"), boolFlag("--under-min-isr-partitions"),
			boolFlag("--unavailable-partitions"), boolFlag("--sizes"))},
		{name: "delete", flags: withCommon()},
		{name: "alter-config", flags: withCommon(valueFlag("--set"), valueFlag("--delete"))},
		{name: "add-partitions", flags: withCommon(valueFlag("--total"))},
	}},
	{name: "group", subs: []cmdSpec{
		{name: "list", flags: withCommon(enumFlag("--state", groupStateNames...), enumFlag("--type", "classic", "consumer"))},
		{name: "describe", flags: withCommon()},
		{name: "reset-offsets", flags: withCommon(
			valueFlag("--topic"), boolFlag("--all-topics"),
			boolFlag("--to-earliest"), boolFlag("--to-latest"), valueFlag("--to-offset"), valueFlag("--to-datetime"), valueFlag("--shift-by"),
			boolFlag("--dry-run"), boolFlag("--execute"))},
		{name: "delete", flags: withCommon()},
		{name: "delete-offsets", flags: withCommon(valueFlag("--topic"))},
	}},
	{name: "produce", flags: withCommon(
		fileFlag("--file"), valueFlag("--key-separator"), valueFlag("--header"), valueFlag("--partition"),
		enumFlag("--acks", "all", "1", "0"), enumFlag("--compression", "none", "gzip", "snappy", "lz4", "zstd"))},
	{name: "consume", flags: withCommon(
		valueFlag("--group"), enumFlag("--from", "earliest", "latest"), valueFlag("--partition"), valueFlag("--count"),
		boolFlag("--exit-at-end"), boolFlag("-e"), valueFlag("--format"))},
	{name: "cluster", subs: []cmdSpec{
		{name: "info", flags: withCommon()},
		{name: "describe", flags: withCommon()},
		{name: "add-voter", flags: withCommon(valueFlag("--voter-id"), valueFlag("--directory-id"), valueFlag("--endpoint"), valueFlag("--listener"))},
		{name: "remove-voter", flags: withCommon(valueFlag("--voter-id"), valueFlag("--directory-id"))},
	}},
	{name: "partitions", subs: []cmdSpec{
		{name: "elect-leaders", flags: withCommon(enumFlag("--election-type", "preferred", "unclean"),
			valueFlag("--topic"), valueFlag("--partition"), boolFlag("--all-topic-partitions"))},
		{name: "reassign", flags: withCommon(boolFlag("--generate"), boolFlag("--execute"), boolFlag("--verify"), boolFlag("--cancel"),
			fileFlag("--topics-to-move-json-file"), valueFlag("--broker-list"), boolFlag("--disable-rack-aware"), fileFlag("--reassignment-json-file"),
			valueFlag("--throttle"), boolFlag("--additional"), boolFlag("--preserve-throttles"))},
	}},
	{name: "connect", flags: []flagSpec{fileFlag("--config"), valueFlag("--set"), boolFlag("--standalone"),
		enumFlag("--log-format", "text", "json"), enumFlag("--log-level", "debug", "info", "warn", "error")},
		subs: connectCommandSpecs},
	{name: "perf", subs: perfModes()},
	{name: "completion", args: completionShells},
	{name: "version"},
	{name: "help"},
}
