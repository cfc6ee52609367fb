package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

const connectPluginsUsage = `usage: sluice connect plugins [--all] [flags]

Lists the connector plugins the worker can run: class, type (source or
sink) and version. --all adds transformations, predicates and converters
(Kafka 3.2+).

flags:
  --all                    list every kind of plugin, not only connectors
` + connectFlagsUsage

func runConnectPlugins(args []string, stdout, stderr io.Writer) int {
	fs, cf := newConnectFlagSet("connect plugins")
	all := fs.Bool("all", false, "")
	if _, code, ok := parseConnectArgs(fs, args, connectPluginsUsage, 0, 0, stdout, stderr); !ok {
		return code
	}
	var query url.Values
	if *all {
		query = url.Values{"connectorsOnly": {"false"}}
	}
	return runConnectCmd(cf, connectPluginsUsage, stderr, func(ctx context.Context, c *connectClient) error {
		var plugins []struct {
			Class   string `json:"class"`
			Type    string `json:"type"`
			Version string `json:"version"`
		}
		body, err := c.getJSON(ctx, "/connector-plugins", query, &plugins)
		if err != nil || cf.json {
			return firstErr(err, writeRawJSON(stdout, body))
		}
		tw := newTable(stdout)
		fmt.Fprintln(tw, "CLASS\tTYPE\tVERSION")
		for _, p := range plugins {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Class, orDash(p.Type), orDash(p.Version))
		}
		return tw.Flush()
	})
}

const connectValidateUsage = `usage: sluice connect validate [CLASS] -f FILE [flags]

Asks the worker to validate a connector config against plugin CLASS
without creating anything, and prints each error by key. FILE takes the
forms create reads; CLASS defaults to its connector.class. The exit code
is 1 when the config has errors.

flags:
  -f, --file FILE          the config to validate ("-" for standard input)
` + connectFlagsUsage

// configInfos is Kafka's answer to config/validate; only the values'
// errors are shown.
type configInfos struct {
	Name       string `json:"name"`
	ErrorCount int    `json:"error_count"`
	Configs    []struct {
		Value struct {
			Name   string   `json:"name"`
			Errors []string `json:"errors"`
		} `json:"value"`
	} `json:"configs"`
}

func runConnectValidate(args []string, stdout, stderr io.Writer) int {
	fs, cf := newConnectFlagSet("connect validate")
	var file string
	fs.StringVar(&file, "file", "", "")
	fs.StringVar(&file, "f", "", "")
	rest, code, ok := parseConnectArgs(fs, args, connectValidateUsage, 0, 1, stdout, stderr)
	if !ok {
		return code
	}
	if file == "" {
		return reportUsage(stderr, connectValidateUsage, usagef("-f FILE is required"))
	}
	return runConnectCmd(cf, connectValidateUsage, stderr, func(ctx context.Context, c *connectClient) error {
		def, err := readConnectorFile(file)
		if err != nil {
			return err
		}
		class := def.config["connector.class"]
		if len(rest) > 0 {
			class = rest[0]
		}
		if class == "" {
			return usagef("no CLASS given and %s has no connector.class", file)
		}
		// Kafka validates the body's connector.class, and requires one.
		if def.config["connector.class"] == "" {
			def.config["connector.class"] = class
		}
		resp, err := c.do(ctx, http.MethodPut, connectPath("connector-plugins", class, "config", "validate"), nil, def.config)
		if err != nil {
			return err
		}
		var infos configInfos
		if err := resp.decode(&infos); err != nil {
			return err
		}
		if cf.json {
			err = writeRawJSON(stdout, resp.body)
		} else {
			err = printValidation(stdout, class, &infos)
		}
		if err == nil && infos.ErrorCount > 0 {
			err = fmt.Errorf("the config of %s has %s", class, plural(int64(infos.ErrorCount), "error"))
		}
		return err
	})
}

func printValidation(w io.Writer, class string, infos *configInfos) error {
	if infos.ErrorCount == 0 {
		_, err := fmt.Fprintf(w, "The config is valid for %s.\n", class)
		return err
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "CONFIG\tERROR")
	for _, ci := range infos.Configs {
		for _, e := range ci.Value.Errors {
			fmt.Fprintf(tw, "%s\t%s\n", ci.Value.Name, oneLine(e))
		}
	}
	return tw.Flush()
}

const connectHealthUsage = `usage: sluice connect health [flags]

Shows the worker's health (GET /health, Kafka 3.9+): healthy, starting or
unhealthy, with the worker's message. The exit code is 1 unless healthy.
A worker without /health that answers GET / is reported "reachable" with
its version.

flags:
` + connectFlagsUsage

type workerHealth struct {
	Status  string          `json:"status"`
	Message string          `json:"message"`
	Server  json.RawMessage `json:"server,omitempty"` // GET / of a worker without /health
}

func runConnectHealth(args []string, stdout, stderr io.Writer) int {
	fs, cf := newConnectFlagSet("connect health")
	if _, code, ok := parseConnectArgs(fs, args, connectHealthUsage, 0, 0, stdout, stderr); !ok {
		return code
	}
	return runConnectCmd(cf, connectHealthUsage, stderr, func(ctx context.Context, c *connectClient) error {
		var h workerHealth
		body, err := c.getJSON(ctx, "/health", nil, &h)
		var ce *connectError
		switch {
		case err == nil:
		case isStatus(err, http.StatusNotFound):
			// Before KIP-1017 there is no health check; GET / answering
			// at least shows the REST server is up.
			var info struct {
				Version string `json:"version"`
			}
			if body, err = c.getJSON(ctx, "/", nil, &info); err != nil {
				return err
			}
			h = workerHealth{Status: "reachable", Message: "the worker has no /health (before Kafka 3.9); version " + orDash(info.Version), Server: body}
			if cf.json {
				return writeJSON(stdout, h)
			}
		case errors.As(err, &ce) && json.Unmarshal(ce.body, &h) == nil && h.Status != "":
			// 503 starting and 500 unhealthy carry the same entity.
			body = ce.body
		default:
			return err
		}
		if cf.json {
			err = writeRawJSON(stdout, body)
		} else {
			tw := newTable(stdout)
			fmt.Fprintf(tw, "Status:\t%s\n", h.Status)
			fmt.Fprintf(tw, "Message:\t%s\n", orDash(oneLine(h.Message)))
			err = tw.Flush()
		}
		if err == nil && h.Status != "healthy" && h.Status != "reachable" {
			err = errReported
		}
		return err
	})
}
