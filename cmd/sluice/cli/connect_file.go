package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// connectStdin is where "-f -" reads from; tests replace it.
var connectStdin io.Reader = os.Stdin

// connectorFile is a connector definition as create and validate read it.
type connectorFile struct {
	name         string            // "" if the file names none
	config       map[string]string // the connector's config
	initialState string            // KIP-980's initial_state, "" if none
}

// readConnectorFile reads one of the three forms users have at hand:
//   - Kafka's POST /connectors body, {"name":...,"config":{...}} (also what
//     GET /connectors/NAME answers, so a describe --json can be replayed);
//   - a bare config object with a "name" key, as connect-standalone takes;
//   - a .properties file such as Kafka's connect-file-source.properties.
//
// JSON is told from properties by the extension, else by a leading "{".
func readConnectorFile(path string) (connectorFile, error) {
	b, err := readFileOrStdin(path)
	if err != nil {
		return connectorFile{}, err
	}
	ext := strings.ToLower(filepath.Ext(path))
	isJSON := ext == ".json" || ext != ".properties" && bytes.HasPrefix(bytes.TrimSpace(b), []byte("{"))
	var f connectorFile
	if isJSON {
		f, err = parseConnectorJSON(b)
	} else {
		var props map[string]string
		props, err = parseProperties(string(b))
		f = connectorFile{name: props["name"], config: props}
	}
	if err != nil {
		return connectorFile{}, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// readFileOrStdin reads a file, or standard input for "-".
func readFileOrStdin(path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(connectStdin)
	}
	return os.ReadFile(path)
}

func parseConnectorJSON(b []byte) (connectorFile, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return connectorFile{}, fmt.Errorf("not a JSON object: %w", err)
	}
	rawConfig, wrapped := top["config"]
	if !wrapped {
		config, err := stringMap(top)
		return connectorFile{name: config["name"], config: config}, err
	}
	var f connectorFile
	for k, v := range top {
		var err error
		switch k {
		case "name":
			err = json.Unmarshal(v, &f.name)
		case "initial_state":
			err = json.Unmarshal(v, &f.initialState)
		case "config":
			var obj map[string]json.RawMessage
			if err = json.Unmarshal(rawConfig, &obj); err == nil {
				f.config, err = stringMap(obj)
			}
		case "tasks", "type": // GET /connectors/NAME's read-only fields
		default:
			err = fmt.Errorf("unknown field (want name, config, initial_state)")
		}
		if err != nil {
			return connectorFile{}, fmt.Errorf("%q: %w", k, err)
		}
	}
	if f.config == nil {
		return connectorFile{}, fmt.Errorf(`"config" is not an object`)
	}
	if f.name == "" {
		f.name = f.config["name"]
	}
	return f, nil
}

// stringMap turns a JSON object into a connector config. Connect configs
// are strings, but a hand-written file says "tasks.max": 1; Kafka's JSON
// reader accepts that, so we send the number's text.
func stringMap(obj map[string]json.RawMessage) (map[string]string, error) {
	out := make(map[string]string, len(obj))
	// Sorted, so the first bad key reported is the same each run.
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		raw := bytes.TrimSpace(obj[k])
		var s string
		switch {
		case len(raw) > 0 && raw[0] == '"':
			if err := json.Unmarshal(raw, &s); err != nil {
				return nil, fmt.Errorf("%q: %w", k, err)
			}
		case string(raw) == "true" || string(raw) == "false" || len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9'):
			s = string(raw)
		default:
			return nil, fmt.Errorf("%q: the value must be a string, number or boolean, not %s", k, raw)
		}
		out[k] = s
	}
	return out, nil
}

// parseProperties reads the java.util.Properties text format, which
// Kafka's .properties files use: "#" and "!" comments, key=value,
// key:value or key value, backslash line continuations and escapes.
func parseProperties(text string) (map[string]string, error) {
	props := make(map[string]string)
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimLeft(lines[i], " \t\f")
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		// A line ending in an odd number of backslashes continues on the
		// next, whose leading blanks are dropped.
		for trailingBackslashes(line)%2 == 1 && i+1 < len(lines) {
			i++
			line = line[:len(line)-1] + strings.TrimLeft(lines[i], " \t\f")
		}
		if trailingBackslashes(line)%2 == 1 {
			line = line[:len(line)-1]
		}
		end := 0
		for end < len(line) && !strings.ContainsRune("=: \t\f", rune(line[end])) {
			if line[end] == '\\' {
				end++
			}
			end++
		}
		end = min(end, len(line))
		key, rest := line[:end], strings.TrimLeft(line[end:], " \t\f")
		if rest != "" && (rest[0] == '=' || rest[0] == ':') {
			rest = strings.TrimLeft(rest[1:], " \t\f")
		}
		k, err := unescapeProperty(key)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		v, err := unescapeProperty(rest)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		props[k] = v
	}
	return props, nil
}

func trailingBackslashes(s string) int {
	n := 0
	for n < len(s) && s[len(s)-1-n] == '\\' {
		n++
	}
	return n
}

func unescapeProperty(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch s[i] {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'f':
			b.WriteByte('\f')
		case 'u':
			if i+5 > len(s) {
				return "", fmt.Errorf("malformed \\u escape in %q", s)
			}
			r, err := strconv.ParseUint(s[i+1:i+5], 16, 16)
			if err != nil {
				return "", fmt.Errorf("malformed \\u escape in %q", s)
			}
			b.WriteRune(rune(r))
			i += 4
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), nil
}
