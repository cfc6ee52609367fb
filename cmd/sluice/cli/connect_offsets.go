package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
)

const connectOffsetsUsage = `usage: sluice connect offsets NAME [--reset | --set FILE] [flags]

Shows a connector's committed offsets (Kafka 3.5+): for a sink, the
topic, partition and offset its consumer group holds; for a source, each
source partition and offset as the connector writes them. The connector
must be STOPPED (sluice connect stop) for --reset or --set (Kafka 3.6+).

flags:
  --reset                  delete all the connector's offsets
  --set FILE               alter offsets: FILE ("-" for standard input) is
                           {"offsets":[{"partition":{...},"offset":{...}}]},
                           as offsets --json prints; a null offset resets
                           that partition
` + connectFlagsUsage

// connectOffset is one entry of Kafka's ConnectorOffsets.
type connectOffset struct {
	Partition json.RawMessage `json:"partition"`
	Offset    json.RawMessage `json:"offset"`
}

func runConnectOffsets(args []string, stdout, stderr io.Writer) int {
	fs, cf := newConnectFlagSet("connect offsets")
	reset := fs.Bool("reset", false, "")
	setFile := fs.String("set", "", "")
	rest, code, ok := parseConnectArgs(fs, args, connectOffsetsUsage, 1, 1, stdout, stderr)
	if !ok {
		return code
	}
	if *reset && *setFile != "" {
		return reportUsage(stderr, connectOffsetsUsage, usagef("--reset and --set exclude each other"))
	}
	path := connectPath("connectors", rest[0], "offsets")
	return runConnectCmd(cf, connectOffsetsUsage, stderr, func(ctx context.Context, c *connectClient) error {
		var resp *connectResponse
		var err error
		switch {
		case *reset:
			resp, err = c.do(ctx, http.MethodDelete, path, nil, nil)
		case *setFile != "":
			var body json.RawMessage
			if body, err = readOffsetsFile(*setFile); err == nil {
				resp, err = c.do(ctx, http.MethodPatch, path, nil, body)
			}
		default:
			var offsets struct {
				Offsets []connectOffset `json:"offsets"`
			}
			var body []byte
			body, err = c.getJSON(ctx, path, nil, &offsets)
			if err != nil || cf.json {
				return firstErr(err, writeRawJSON(stdout, body))
			}
			return printOffsets(stdout, offsets.Offsets)
		}
		if err != nil || cf.json {
			return firstErr(err, writeRawJSON(stdout, respBody(resp)))
		}
		var msg struct {
			Message string `json:"message"`
		}
		if err := resp.decode(&msg); err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, msg.Message)
		return err
	})
}

// readOffsetsFile reads a PATCH body and checks it is the ConnectorOffsets
// shape, so a wrong file fails here with a clear message.
func readOffsetsFile(path string) (json.RawMessage, error) {
	b, err := readFileOrStdin(path)
	if err != nil {
		return nil, err
	}
	var check struct {
		Offsets []connectOffset `json:"offsets"`
	}
	if err := json.Unmarshal(b, &check); err != nil {
		return nil, fmt.Errorf("%s: not {\"offsets\":[...]}: %w", path, err)
	}
	if len(check.Offsets) == 0 {
		return nil, fmt.Errorf("%s: no offsets (want {\"offsets\":[{\"partition\":{...},\"offset\":{...}}]})", path)
	}
	return json.RawMessage(b), nil
}

// sinkOffset is the fixed shape of a sink connector's offsets
// (Kafka's SinkUtils): partition {kafka_topic, kafka_partition}, offset
// {kafka_offset}.
type sinkOffset struct {
	topic     string
	partition int64
	offset    string // "-" for a null offset
}

func printOffsets(w io.Writer, offsets []connectOffset) error {
	tw := newTable(w)
	if sink, ok := sinkOffsets(offsets); ok {
		fmt.Fprintln(tw, "TOPIC\tPARTITION\tOFFSET")
		for _, o := range sink {
			fmt.Fprintf(tw, "%s\t%d\t%s\n", o.topic, o.partition, o.offset)
		}
		return tw.Flush()
	}
	rows := make([][2]string, 0, len(offsets))
	for _, o := range offsets {
		rows = append(rows, [2]string{canonicalJSON(o.Partition), canonicalJSON(o.Offset)})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i][0] < rows[j][0] })
	fmt.Fprintln(tw, "PARTITION\tOFFSET")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}

// sinkOffsets reads offsets of the sink shape, sorted; ok is false if any
// entry has another shape (a source connector's).
func sinkOffsets(offsets []connectOffset) ([]sinkOffset, bool) {
	if len(offsets) == 0 {
		return nil, false
	}
	out := make([]sinkOffset, 0, len(offsets))
	for _, o := range offsets {
		var p map[string]json.RawMessage
		var topic string
		var partition int64
		if json.Unmarshal(o.Partition, &p) != nil || len(p) != 2 ||
			json.Unmarshal(p["kafka_topic"], &topic) != nil || json.Unmarshal(p["kafka_partition"], &partition) != nil {
			return nil, false
		}
		so := sinkOffset{topic: topic, partition: partition, offset: "-"}
		if !bytes.Equal(bytes.TrimSpace(o.Offset), []byte("null")) && len(o.Offset) > 0 {
			var off map[string]json.RawMessage
			var n int64
			if json.Unmarshal(o.Offset, &off) != nil || len(off) != 1 || json.Unmarshal(off["kafka_offset"], &n) != nil {
				return nil, false
			}
			so.offset = strconv.FormatInt(n, 10)
		}
		out = append(out, so)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].topic != out[j].topic {
			return out[i].topic < out[j].topic
		}
		return out[i].partition < out[j].partition
	})
	return out, true
}

// canonicalJSON prints a JSON value compactly with sorted keys, so the
// same source partition always reads the same; numbers keep their text.
func canonicalJSON(raw json.RawMessage) string {
	if len(bytes.TrimSpace(raw)) == 0 {
		return "null"
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return string(raw)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // a file name with & stays readable
	if enc.Encode(v) != nil {
		return string(raw)
	}
	return string(bytes.TrimSpace(b.Bytes()))
}
