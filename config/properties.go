package config

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ParseError reports a malformed line in a properties file.
type ParseError struct {
	Line int    // 1-based line number where the bad logical line starts
	Msg  string // what is wrong
}

func (e *ParseError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// Property is one key/value pair of a properties file and the line its
// logical line starts on.
type Property struct {
	Key, Value string
	Line       int
}

// ParseProperties reads a Java-style .properties document, the format Kafka's
// server.properties uses, and returns its key/value pairs. A later duplicate
// key replaces an earlier one. A malformed line fails it with a *ParseError;
// ParsePropertyLines reports every bad line instead.
func ParseProperties(r io.Reader) (map[string]string, error) {
	props, errs := ParsePropertyLines(r)
	if len(errs) > 0 {
		return nil, errs[0]
	}
	out := make(map[string]string, len(props))
	for _, p := range props {
		out[p.Key] = p.Value
	}
	return out, nil
}

// ParsePropertyLines reads a properties document in file order, keeping
// each pair's line number, and goes on past malformed lines so that a
// caller can report them all at once (a file brought over from Kafka should
// not take one start attempt per mistake).
//
// The supported subset:
//   - blank lines are skipped; a line whose first non-blank character is '#'
//     or '!' is a comment;
//   - a pair is written "key=value", "key: value" or "key value"; blanks around
//     the key, the separator and the value are dropped;
//   - a line ending in an odd number of backslashes continues on the next line,
//     whose leading blanks are dropped;
//   - escapes \t \n \r \f \uXXXX are decoded, and a backslash before any other
//     character stands for that character (so "\=" or "\:" put a separator
//     into a key).
//
// A key without any separator or value, an empty key and a bad \u escape are
// errors of type *ParseError carrying the line number; a read error ends
// the document with an error of its own.
func ParsePropertyLines(r io.Reader) ([]Property, []error) {
	var out []Property
	var errs []error
	add := func(start int, logical string) {
		k, v, err := splitPair(logical)
		if err != nil {
			errs = append(errs, &ParseError{Line: start, Msg: err.Error()})
			return
		}
		out = append(out, Property{Key: k, Value: v, Line: start})
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	lineNo := 0
	var logical strings.Builder
	start := 0
	continuing := false
	for sc.Scan() {
		lineNo++
		line := strings.TrimRight(sc.Text(), "\r")
		if lineNo == 1 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		if continuing {
			line = strings.TrimLeft(line, " \t\f")
		} else {
			trimmed := strings.TrimLeft(line, " \t\f")
			if trimmed == "" || trimmed[0] == '#' || trimmed[0] == '!' {
				continue
			}
			line = trimmed
			start = lineNo
			logical.Reset()
		}
		if endsWithOddBackslashes(line) {
			logical.WriteString(line[:len(line)-1])
			continuing = true
			continue
		}
		logical.WriteString(line)
		continuing = false
		add(start, logical.String())
	}
	if err := sc.Err(); err != nil {
		return out, append(errs, fmt.Errorf("line %d: %w", lineNo+1, err))
	}
	if continuing {
		// A continuation at end of input just ends the value.
		add(start, logical.String())
	}
	return out, errs
}

func endsWithOddBackslashes(s string) bool {
	n := 0
	for i := len(s) - 1; i >= 0 && s[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}

// splitPair splits one logical line (already joined, leading blanks removed)
// into its unescaped key and value.
func splitPair(s string) (string, string, error) {
	// Find the end of the key: the first unescaped '=', ':' or blank.
	end := len(s)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' {
			i++
			continue
		}
		if c == '=' || c == ':' || c == ' ' || c == '\t' || c == '\f' {
			end = i
			break
		}
	}
	rawKey := s[:end]
	rest := s[end:]
	hasSep := false
	rest = strings.TrimLeft(rest, " \t\f")
	if rest != "" && (rest[0] == '=' || rest[0] == ':') {
		rest = strings.TrimLeft(rest[1:], " \t\f")
		hasSep = true
	} else if end < len(s) {
		hasSep = true // blank-separated pair
	}
	key, err := unescape(rawKey)
	if err != nil {
		return "", "", err
	}
	if key == "" {
		return "", "", fmt.Errorf("empty key")
	}
	if !hasSep {
		return "", "", fmt.Errorf("%q has no value (expected key=value)", key)
	}
	val, err := unescape(strings.TrimRight(rest, " \t\f"))
	if err != nil {
		return "", "", err
	}
	return key, val, nil
}

func unescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i == len(s) {
			break // trailing lone backslash: dropped, as Java does
		}
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
			if len(s)-(i+1) < 4 {
				return "", fmt.Errorf("malformed \\u escape in %q", s)
			}
			n, err := strconv.ParseUint(s[i+1:i+5], 16, 16)
			if err != nil {
				return "", fmt.Errorf("malformed \\u escape in %q", s)
			}
			b.WriteRune(rune(n))
			i += 4
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), nil
}
