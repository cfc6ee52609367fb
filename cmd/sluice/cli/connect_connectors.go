package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// The entities of Kafka's REST API that tables are made of. Only the
// fields shown are decoded: --json prints the worker's own answer, so
// fields a newer worker adds are never lost.
type connectorStatus struct {
	Name      string `json:"name"`
	Connector struct {
		State    string `json:"state"`
		WorkerID string `json:"worker_id"`
		Trace    string `json:"trace"`
	} `json:"connector"`
	Tasks []connectTaskState `json:"tasks"`
	Type  string             `json:"type"`
}

type connectTaskState struct {
	ID       int    `json:"id"`
	State    string `json:"state"`
	WorkerID string `json:"worker_id"`
	Trace    string `json:"trace"`
}

type connectorInfo struct {
	Name   string            `json:"name"`
	Config map[string]string `json:"config"`
	Tasks  []struct {
		Connector string `json:"connector"`
		Task      int    `json:"task"`
	} `json:"tasks"`
	Type string `json:"type"`
}

const connectListUsage = `usage: sluice connect list [--expand] [flags]

Lists the connectors' names. --expand asks for their status and info too
(Kafka 2.3+) and prints a table: type, connector state, how many tasks are
in each state, and the connector class.

flags:
  --expand                 show type, state, tasks and class
` + connectFlagsUsage

func runConnectList(args []string, stdout, stderr io.Writer) int {
	fs, cf := newConnectFlagSet("connect list")
	expand := fs.Bool("expand", false, "")
	if _, code, ok := parseConnectArgs(fs, args, connectListUsage, 0, 0, stdout, stderr); !ok {
		return code
	}
	return runConnectCmd(cf, connectListUsage, stderr, func(ctx context.Context, c *connectClient) error {
		if !*expand {
			var names []string
			body, err := c.getJSON(ctx, "/connectors", nil, &names)
			if err != nil || cf.json {
				return firstErr(err, writeRawJSON(stdout, body))
			}
			sort.Strings(names)
			for _, n := range names {
				fmt.Fprintln(stdout, n)
			}
			return nil
		}
		var all map[string]struct {
			Status *connectorStatus `json:"status"`
			Info   *connectorInfo   `json:"info"`
		}
		body, err := c.getJSON(ctx, "/connectors", url.Values{"expand": {"status", "info"}}, &all)
		if err != nil || cf.json {
			return firstErr(err, writeRawJSON(stdout, body))
		}
		tw := newTable(stdout)
		fmt.Fprintln(tw, "CONNECTOR\tTYPE\tSTATE\tTASKS\tCLASS")
		for _, n := range slices.Sorted(maps.Keys(all)) {
			e := all[n]
			typ, state, tasks, class := "", "", "", ""
			if e.Status != nil {
				typ, state, tasks = e.Status.Type, e.Status.Connector.State, taskSummary(e.Status.Tasks)
			}
			if e.Info != nil {
				typ, class = e.Info.Type, e.Info.Config["connector.class"]
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n, orDash(typ), orDash(state), orDash(tasks), orDash(class))
		}
		return tw.Flush()
	})
}

// firstErr returns the first non-nil error: a request's failure, else
// printing's.
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// connectStates orders task states for summaries: healthy first.
var connectStates = []string{"RUNNING", "PAUSED", "STOPPED", "RESTARTING", "UNASSIGNED", "FAILED"}

// taskSummary counts tasks per state: "2 RUNNING, 1 FAILED".
func taskSummary(tasks []connectTaskState) string {
	count := make(map[string]int)
	for _, t := range tasks {
		count[t.State]++
	}
	var parts []string
	for _, s := range connectStates {
		if count[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", count[s], s))
			delete(count, s)
		}
	}
	var other []string // states newer than this client
	for s, n := range count {
		other = append(other, fmt.Sprintf("%d %s", n, s))
	}
	sort.Strings(other)
	return strings.Join(append(parts, other...), ", ")
}

const connectStatusUsage = `usage: sluice connect status NAME [flags]

Shows the state of a connector and of each of its tasks, with the worker
running it and the first line of its trace if it failed (--json has the
whole trace).

flags:
` + connectFlagsUsage

func runConnectStatus(args []string, stdout, stderr io.Writer) int {
	fs, cf := newConnectFlagSet("connect status")
	rest, code, ok := parseConnectArgs(fs, args, connectStatusUsage, 1, 1, stdout, stderr)
	if !ok {
		return code
	}
	return runConnectCmd(cf, connectStatusUsage, stderr, func(ctx context.Context, c *connectClient) error {
		var st connectorStatus
		body, err := c.getJSON(ctx, connectPath("connectors", rest[0], "status"), nil, &st)
		if err != nil || cf.json {
			return firstErr(err, writeRawJSON(stdout, body))
		}
		fmt.Fprintf(stdout, "Connector: %s (%s)\n\n", st.Name, orDash(st.Type))
		return printStatusTable(stdout, &st)
	})
}

// printStatusTable prints one row for the connector, then one per task.
func printStatusTable(w io.Writer, st *connectorStatus) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "ID\tSTATE\tWORKER\tTRACE")
	fmt.Fprintf(tw, "connector\t%s\t%s\t%s\n", orDash(st.Connector.State), orDash(st.Connector.WorkerID), orDash(traceLine(st.Connector.Trace)))
	tasks := append([]connectTaskState(nil), st.Tasks...)
	sort.SliceStable(tasks, func(i, j int) bool { return tasks[i].ID < tasks[j].ID })
	for _, t := range tasks {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", t.ID, orDash(t.State), orDash(t.WorkerID), orDash(traceLine(t.Trace)))
	}
	return tw.Flush()
}

// traceLine is a stack trace's first line, which names the exception.
func traceLine(trace string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(trace), "\n")
	line = strings.TrimSpace(line)
	if len(line) > 160 {
		line = line[:157] + "..."
	}
	return line
}

const connectDescribeUsage = `usage: sluice connect describe NAME [flags]

Shows a connector's type, config and the state of it and its tasks.
--json prints {"info": GET /connectors/NAME, "status": its status, or
null if the worker has none yet}.

flags:
` + connectFlagsUsage

func runConnectDescribe(args []string, stdout, stderr io.Writer) int {
	fs, cf := newConnectFlagSet("connect describe")
	rest, code, ok := parseConnectArgs(fs, args, connectDescribeUsage, 1, 1, stdout, stderr)
	if !ok {
		return code
	}
	name := rest[0]
	return runConnectCmd(cf, connectDescribeUsage, stderr, func(ctx context.Context, c *connectClient) error {
		var info connectorInfo
		infoBody, err := c.getJSON(ctx, connectPath("connectors", name), nil, &info)
		if err != nil {
			return err
		}
		// A connector just created has no status until a worker runs it:
		// Kafka answers 404 then, which is not describe's failure.
		var st *connectorStatus
		statusBody, err := c.getJSON(ctx, connectPath("connectors", name, "status"), nil, &st)
		if err != nil && !isStatus(err, http.StatusNotFound) {
			return err
		}
		if cf.json {
			if st == nil {
				statusBody = []byte("null")
			}
			return writeJSON(stdout, struct {
				Info   json.RawMessage `json:"info"`
				Status json.RawMessage `json:"status"`
			}{infoBody, statusBody})
		}
		tw := newTable(stdout)
		fmt.Fprintf(tw, "Connector:\t%s\n", info.Name)
		fmt.Fprintf(tw, "Type:\t%s\n", orDash(info.Type))
		fmt.Fprintf(tw, "Class:\t%s\n", orDash(info.Config["connector.class"]))
		fmt.Fprintf(tw, "Tasks:\t%d\n", len(info.Tasks))
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(stdout)
		if err := printConfigTable(stdout, info.Config); err != nil {
			return err
		}
		fmt.Fprintln(stdout)
		if st == nil {
			_, err := fmt.Fprintln(stdout, "No status yet: no worker has started the connector.")
			return err
		}
		return printStatusTable(stdout, st)
	})
}

func printConfigTable(w io.Writer, config map[string]string) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "CONFIG\tVALUE")
	for _, k := range slices.Sorted(maps.Keys(config)) {
		fmt.Fprintf(tw, "%s\t%s\n", k, oneLine(config[k]))
	}
	return tw.Flush()
}

const connectCreateUsage = `usage: sluice connect create -f FILE [--initial-state STATE] [flags]

Creates a connector (POST /connectors). FILE ("-" for standard input) is
Kafka's request body {"name": ..., "config": {...}}, a bare config object
with a "name" key, or a .properties file such as Kafka's
connect-file-source.properties.

flags:
  -f, --file FILE          the connector's definition
  --initial-state STATE    RUNNING, PAUSED or STOPPED (Kafka 3.7+)
` + connectFlagsUsage

func runConnectCreate(args []string, stdout, stderr io.Writer) int {
	fs, cf := newConnectFlagSet("connect create")
	var file, state string
	fs.StringVar(&file, "file", "", "")
	fs.StringVar(&file, "f", "", "")
	fs.StringVar(&state, "initial-state", "", "")
	if _, code, ok := parseConnectArgs(fs, args, connectCreateUsage, 0, 0, stdout, stderr); !ok {
		return code
	}
	if file == "" {
		return reportUsage(stderr, connectCreateUsage, usagef("-f FILE is required"))
	}
	if state != "" {
		state = strings.ToUpper(state)
		if state != "RUNNING" && state != "PAUSED" && state != "STOPPED" {
			return reportUsage(stderr, connectCreateUsage, usagef("--initial-state: %q is not RUNNING, PAUSED or STOPPED", state))
		}
	}
	return runConnectCmd(cf, connectCreateUsage, stderr, func(ctx context.Context, c *connectClient) error {
		def, err := readConnectorFile(file)
		if err != nil {
			return err
		}
		if def.name == "" {
			return fmt.Errorf("%s: no connector name (a \"name\" key)", file)
		}
		if state != "" {
			def.initialState = state
		}
		req := struct {
			Name         string            `json:"name"`
			Config       map[string]string `json:"config"`
			InitialState string            `json:"initial_state,omitempty"`
		}{def.name, def.config, def.initialState}
		resp, err := c.do(ctx, http.MethodPost, "/connectors", nil, req)
		if err != nil || cf.json {
			return firstErr(err, writeRawJSON(stdout, respBody(resp)))
		}
		var info connectorInfo
		if err := resp.decode(&info); err != nil {
			return err
		}
		return printResults(stdout, [][2]string{{info.Name, "created"}})
	})
}

func respBody(r *connectResponse) []byte {
	if r == nil {
		return nil
	}
	return r.body
}

// printResults prints what a command did to each connector.
func printResults(w io.Writer, rows [][2]string) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "CONNECTOR\tSTATUS")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}

const connectConfigUsage = `usage: sluice connect config NAME [--set KEY=VALUE]... [--unset KEY]... [flags]

Shows a connector's config or, with --set or --unset, changes some keys
and leaves the others as they are (PATCH, Kafka 3.8+; against an older
worker, the config is read, changed and written back with PUT).

flags:
  --set KEY=VALUE          set a key (repeatable)
  --unset KEY              delete a key (repeatable)
` + connectFlagsUsage

func runConnectConfig(args []string, stdout, stderr io.Writer) int {
	fs, cf := newConnectFlagSet("connect config")
	var set kvFlag
	var unset listFlag
	fs.Var(&set, "set", "")
	fs.Var(&unset, "unset", "")
	rest, code, ok := parseConnectArgs(fs, args, connectConfigUsage, 1, 1, stdout, stderr)
	if !ok {
		return code
	}
	patch := make(map[string]*string)
	for _, k := range set.keys {
		v := set.values[k]
		patch[k] = &v
	}
	for _, k := range unset {
		if _, both := patch[k]; both {
			return reportUsage(stderr, connectConfigUsage, usagef("%s is both set and unset", k))
		}
		patch[k] = nil // JSON null: PATCH deletes the key
	}
	name := rest[0]
	path := connectPath("connectors", name, "config")
	return runConnectCmd(cf, connectConfigUsage, stderr, func(ctx context.Context, c *connectClient) error {
		if len(patch) == 0 {
			var config map[string]string
			body, err := c.getJSON(ctx, path, nil, &config)
			if err != nil || cf.json {
				return firstErr(err, writeRawJSON(stdout, body))
			}
			return printConfigTable(stdout, config)
		}
		resp, err := c.do(ctx, http.MethodPatch, path, nil, patch)
		if isStatus(err, http.StatusMethodNotAllowed) {
			resp, err = putPatchedConfig(ctx, c, path, patch)
		}
		if err != nil || cf.json {
			return firstErr(err, writeRawJSON(stdout, respBody(resp)))
		}
		var info connectorInfo
		if err := resp.decode(&info); err != nil {
			return err
		}
		return printConfigTable(stdout, info.Config)
	})
}

// putPatchedConfig applies a patch the way workers before KIP-477 allow:
// read the config, change it, write it whole. A concurrent change between
// the two is lost, which PATCH exists to avoid.
func putPatchedConfig(ctx context.Context, c *connectClient, path string, patch map[string]*string) (*connectResponse, error) {
	var config map[string]string
	if _, err := c.getJSON(ctx, path, nil, &config); err != nil {
		return nil, err
	}
	for k, v := range patch {
		if v == nil {
			delete(config, k)
		} else {
			config[k] = *v
		}
	}
	return c.do(ctx, http.MethodPut, path, nil, config)
}

// connectTarget is a state change applied to each connector named.
type connectTarget struct {
	verb, method, suffix, done, what string
}

var (
	deleteTarget = connectTarget{"delete", http.MethodDelete, "", "deleted",
		"Deletes connectors: their tasks stop, their config goes; their offsets stay."}
	pauseTarget = connectTarget{"pause", http.MethodPut, "pause", "pause requested",
		"Pauses connectors: their tasks stay assigned, ready to resume."}
	resumeTarget = connectTarget{"resume", http.MethodPut, "resume", "resume requested",
		"Resumes paused or stopped connectors."}
	stopTarget = connectTarget{"stop", http.MethodPut, "stop", "stop requested",
		"Stops connectors: their tasks shut down and release their resources, and\ntheir offsets may then be changed (Kafka 3.5+)."}
)

func (t connectTarget) usage() string {
	return fmt.Sprintf("usage: sluice connect %s NAME... [flags]\n\n%s A connector that fails\ndoes not stop the others; the exit code is then 1.\n\nflags:\n%s", t.verb, t.what, connectFlagsUsage)
}

func connectTargetCommand(t connectTarget) func(args []string, stdout, stderr io.Writer) int {
	return func(args []string, stdout, stderr io.Writer) int {
		usage := t.usage()
		fs, cf := newConnectFlagSet("connect " + t.verb)
		names, code, ok := parseConnectArgs(fs, args, usage, 1, -1, stdout, stderr)
		if !ok {
			return code
		}
		return runConnectCmd(cf, usage, stderr, func(ctx context.Context, c *connectClient) error {
			var rows [][2]string
			failed := false
			for _, n := range names {
				path := connectPath("connectors", n)
				if t.suffix != "" {
					path += connectPath(t.suffix)
				}
				if _, err := c.do(ctx, t.method, path, nil, nil); err != nil {
					fmt.Fprintf(stderr, "sluice: %s %s: %s\n", t.verb, n, errorLine(err, cf.timeout))
					failed = true
					continue
				}
				rows = append(rows, [2]string{n, t.done})
			}
			if !cf.json && len(rows) > 0 {
				if err := printResults(stdout, rows); err != nil {
					return err
				}
			}
			if failed {
				return errReported
			}
			return nil
		})
	}
}

const connectRestartUsage = `usage: sluice connect restart NAME [--include-tasks] [--only-failed] [flags]

Restarts a connector. --include-tasks restarts its tasks too, and
--only-failed only the instances that FAILED (Kafka 3.0+); with either,
the worker answers with the instances' states, RESTARTING for those it
restarts.

flags:
  --include-tasks          restart the tasks too
  --only-failed            restart only failed instances
` + connectFlagsUsage

func runConnectRestart(args []string, stdout, stderr io.Writer) int {
	fs, cf := newConnectFlagSet("connect restart")
	includeTasks := fs.Bool("include-tasks", false, "")
	onlyFailed := fs.Bool("only-failed", false, "")
	rest, code, ok := parseConnectArgs(fs, args, connectRestartUsage, 1, 1, stdout, stderr)
	if !ok {
		return code
	}
	query := url.Values{}
	if *includeTasks {
		query.Set("includeTasks", "true")
	}
	if *onlyFailed {
		query.Set("onlyFailed", "true")
	}
	return runConnectCmd(cf, connectRestartUsage, stderr, func(ctx context.Context, c *connectClient) error {
		resp, err := c.do(ctx, http.MethodPost, connectPath("connectors", rest[0], "restart"), query, nil)
		if err != nil {
			return err
		}
		if len(query) > 0 && len(strings.TrimSpace(string(resp.body))) == 0 {
			// Workers before KIP-745 ignore the parameters and restart the
			// connector alone; the caller asked for more.
			return fmt.Errorf("the worker restarted the connector only: it predates --include-tasks and --only-failed (Kafka 3.0)")
		}
		if cf.json {
			return writeRawJSON(stdout, resp.body)
		}
		if len(query) == 0 {
			return printResults(stdout, [][2]string{{rest[0], "restart requested"}})
		}
		var st connectorStatus
		if err := resp.decode(&st); err != nil {
			return err
		}
		return printStatusTable(stdout, &st)
	})
}

const connectRestartTaskUsage = `usage: sluice connect restart-task NAME ID [flags]

Restarts task ID of connector NAME.

flags:
` + connectFlagsUsage

func runConnectRestartTask(args []string, stdout, stderr io.Writer) int {
	fs, cf := newConnectFlagSet("connect restart-task")
	rest, code, ok := parseConnectArgs(fs, args, connectRestartTaskUsage, 2, 2, stdout, stderr)
	if !ok {
		return code
	}
	id, err := strconv.ParseUint(rest[1], 10, 31)
	if err != nil {
		return reportUsage(stderr, connectRestartTaskUsage, usagef("task ID %q is not a number", rest[1]))
	}
	return runConnectCmd(cf, connectRestartTaskUsage, stderr, func(ctx context.Context, c *connectClient) error {
		id := strconv.FormatUint(id, 10)
		if _, err := c.do(ctx, http.MethodPost, connectPath("connectors", rest[0], "tasks", id, "restart"), nil, nil); err != nil {
			return err
		}
		if cf.json {
			return nil
		}
		return printResults(stdout, [][2]string{{rest[0] + " task " + id, "restart requested"}})
	})
}
