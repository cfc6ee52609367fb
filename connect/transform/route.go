package transform

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/sluice-io/sluice/connect/data"
)

// This file holds the SMTs that route, drop or annotate whole records
// (RegexRouter, TimestampRouter, Filter, DropHeaders, InsertHeader,
// HeaderFrom) and the predicates.

func init() {
	register(&plugin{class: "RegexRouter", kind: kindTransformation, newStage: newRegexRouter, params: []param{
		required("regex", "STRING", "HIGH", "Regular expression to use for matching."),
		required("replacement", "STRING", "HIGH", "Replacement string."),
	}})
	register(&plugin{class: "TimestampRouter", kind: kindTransformation, newStage: newTimestampRouter, params: []param{
		optional("topic.format", "STRING", "${topic}-${timestamp}", "HIGH", "Format string which can contain <code>${topic}</code> and <code>${timestamp}</code> as placeholders for the topic and timestamp, respectively."),
		optional("timestamp.format", "STRING", "yyyyMMdd", "HIGH", "Format string for the timestamp that is compatible with <code>java.text.SimpleDateFormat</code>."),
	}})
	register(&plugin{class: "Filter", kind: kindTransformation, params: []param{},
		newStage: func(*config, operand) (stageFunc, error) {
			return func(*data.Record) (*data.Record, error) { return nil, nil }, nil
		}})
	register(&plugin{class: "DropHeaders", kind: kindTransformation, newStage: newDropHeaders, params: []param{
		required("headers", "LIST", "HIGH", "The name of the headers to be removed."),
	}})
	register(&plugin{class: "InsertHeader", kind: kindTransformation, newStage: newInsertHeader, params: []param{
		required("header", "STRING", "HIGH", "The name of the header."),
		required("value.literal", "STRING", "HIGH", "The literal value that is to be set as the header value on all records."),
	}})
	register(&plugin{class: "HeaderFrom", kind: kindTransformation, keyed: true, newStage: newHeaderFrom, params: []param{
		required("fields", "LIST", "HIGH", "Field names in the record whose values are to be copied or moved to headers."),
		required("headers", "LIST", "HIGH", "Header names, in the same order as the field names listed in the fields configuration property."),
		required("operation", "STRING", "HIGH", "Either <code>move</code> if the fields are to be moved to the headers (removed from the key/value), or <code>copy</code> if the fields are to be copied to the headers (retained in the key/value)."),
		replaceNullParam,
	}})

	register(&plugin{class: "TopicNameMatches", kind: kindPredicate, newPredicate: newTopicNameMatches, params: []param{
		required("pattern", "STRING", "MEDIUM", "A Java regular expression for matching against the name of a record's topic."),
	}})
	register(&plugin{class: "HasHeaderKey", kind: kindPredicate, newPredicate: newHasHeaderKey, params: []param{
		required("name", "STRING", "MEDIUM", "The header name."),
	}})
	register(&plugin{class: "RecordIsTombstone", kind: kindPredicate, params: []param{},
		newPredicate: func(*config) (predicateFunc, error) {
			return func(r *data.Record) bool { return r.Value == nil }, nil
		}})
}

// compileWhole compiles a Java regex for Matcher.matches(): the whole
// input must match. Go's RE2 lacks lookaround and backreferences, which
// are reported as config errors.
func compileWhole(c *config, key string) (*regexp.Regexp, error) {
	p, _ := c.str(key)
	re, err := regexp.Compile(`^(?:` + p + `)$`)
	if err != nil {
		return nil, c.errorf(key, "entry must be a Java-compatible regular expression supported by Go's regexp: %v", err)
	}
	return re, nil
}

// javaReplacement turns a Matcher.replaceFirst replacement ($1, ${name},
// \$) into a regexp.Expand template.
func javaReplacement(repl string, re *regexp.Regexp) (string, error) {
	var b strings.Builder
	groups := re.NumSubexp() // the (?:) wrapper adds no group
	for i := 0; i < len(repl); i++ {
		c := repl[i]
		switch c {
		case '\\':
			i++
			if i >= len(repl) {
				return "", fmt.Errorf("character to be escaped is missing")
			}
			if repl[i] == '$' {
				b.WriteString("$$")
			} else {
				b.WriteByte(repl[i])
			}
		case '$':
			i++
			if i >= len(repl) {
				return "", fmt.Errorf("illegal group reference: group index is missing")
			}
			if repl[i] == '{' {
				end := strings.IndexByte(repl[i:], '}')
				if end < 0 {
					return "", fmt.Errorf("named capturing group is missing trailing '}'")
				}
				name := repl[i+1 : i+end]
				if re.SubexpIndex(name) < 0 {
					return "", fmt.Errorf("no group with name {%s}", name)
				}
				b.WriteString("${" + name + "}")
				i += end
				continue
			}
			if repl[i] < '0' || repl[i] > '9' {
				return "", fmt.Errorf("illegal group reference")
			}
			n := int(repl[i] - '0')
			for i+1 < len(repl) && repl[i+1] >= '0' && repl[i+1] <= '9' && n*10+int(repl[i+1]-'0') <= groups {
				i++
				n = n*10 + int(repl[i]-'0')
			}
			if n > groups {
				return "", fmt.Errorf("no group %d", n)
			}
			b.WriteString("${" + strconv.Itoa(n) + "}")
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

func newRegexRouter(c *config, _ operand) (stageFunc, error) {
	re, err := compileWhole(c, "regex")
	if err != nil {
		return nil, err
	}
	repl, _ := c.str("replacement")
	tmpl, err := javaReplacement(repl, re)
	if err != nil {
		return nil, c.errorf("replacement", "%v", err)
	}
	return func(r *data.Record) (*data.Record, error) {
		m := re.FindStringSubmatchIndex(r.Topic)
		if m == nil {
			return r, nil
		}
		r.Topic = string(re.ExpandString(nil, tmpl, r.Topic, m))
		return r, nil
	}, nil
}

func newTimestampRouter(c *config, _ operand) (stageFunc, error) {
	topicFormat, _ := c.str("topic.format")
	pattern, _ := c.str("timestamp.format")
	f, err := newJavaDateFormat(pattern)
	if err != nil {
		return nil, c.errorf("timestamp.format", "%v", err)
	}
	return func(r *data.Record) (*data.Record, error) {
		if r.Timestamp < 0 {
			return nil, dataErr("timestamp missing on record for topic %s", r.Topic)
		}
		ts := f.Format(data.TimestampFromMillis(r.Timestamp))
		r.Topic = strings.ReplaceAll(strings.ReplaceAll(topicFormat, "${topic}", r.Topic), "${timestamp}", ts)
		return r, nil
	}, nil
}

func newDropHeaders(c *config, _ operand) (stageFunc, error) {
	names, err := c.nonEmptyList("headers")
	if err != nil {
		return nil, err
	}
	return func(r *data.Record) (*data.Record, error) {
		kept := r.Headers[:0]
		for _, h := range r.Headers {
			if !contains(names, h.Key) {
				kept = append(kept, h)
			}
		}
		r.Headers = kept
		return r, nil
	}, nil
}

func newInsertHeader(c *config, _ operand) (stageFunc, error) {
	name, _ := c.str("header")
	lit, _ := c.str("value.literal")
	s, v := data.ParseString(lit)
	return func(r *data.Record) (*data.Record, error) {
		r.Headers = append(r.Headers, data.Header{Key: name, Schema: s, Value: data.CloneValue(v)})
		return r, nil
	}, nil
}

func newHeaderFrom(c *config, o operand) (stageFunc, error) {
	fields, err := c.nonEmptyList("fields")
	if err != nil {
		return nil, err
	}
	headers, err := c.nonEmptyList("headers")
	if err != nil {
		return nil, err
	}
	if len(fields) != len(headers) {
		return nil, &ConfigError{Msg: "'fields' config must have the same number of elements as 'headers' config"}
	}
	op, err := c.oneOf("operation", false, "move", "copy")
	if err != nil {
		return nil, err
	}
	withDefault, err := c.boolean("replace.null.with.default")
	if err != nil {
		return nil, err
	}
	purpose := "header " + op
	var cache schemaCache
	build := func(s *data.Schema) (*data.Schema, error) {
		out := copySchemaBasics(s, data.TypeStruct)
		for _, f := range s.Fields {
			if !contains(fields, f.Name) {
				addField(out, f.Name, f.Schema)
			}
		}
		return out, nil
	}
	return func(r *data.Record) (*data.Record, error) {
		s, v := o.get(r)
		if s == nil {
			m, err := requireMap(v, purpose)
			if err != nil {
				return nil, err
			}
			for i, f := range fields {
				r.Headers = append(r.Headers, data.Header{Key: headers[i], Value: data.CloneValue(m[f])})
			}
			if op == "move" {
				for _, f := range fields {
					delete(m, f)
				}
			}
			return r, nil
		}
		st, err := requireStruct(v, purpose)
		if err != nil {
			return nil, err
		}
		for i, f := range fields {
			fd := s.Field(f)
			if fd == nil {
				return nil, dataErr("field %s does not exist in the %s schema", f, map[operand]string{keyOperand: "key", valueOperand: "value"}[o])
			}
			r.Headers = append(r.Headers, data.Header{Key: headers[i], Schema: fd.Schema, Value: data.CloneValue(fieldValue(st, f, withDefault))})
		}
		if op == "copy" {
			return r, nil
		}
		ns, err := cache.get(s, build)
		if err != nil {
			return nil, err
		}
		out := data.NewStruct(ns)
		for _, f := range ns.Fields {
			if err := out.Put(f.Name, fieldValue(st, f.Name, withDefault)); err != nil {
				return nil, err
			}
		}
		return o.set(r, ns, out), nil
	}, nil
}

func newTopicNameMatches(c *config) (predicateFunc, error) {
	if p, _ := c.str("pattern"); p == "" {
		return nil, c.errorf("pattern", "string must be non-empty")
	}
	re, err := compileWhole(c, "pattern")
	if err != nil {
		return nil, err
	}
	return func(r *data.Record) bool { return re.MatchString(r.Topic) }, nil
}

func newHasHeaderKey(c *config) (predicateFunc, error) {
	name, _ := c.str("name")
	if name == "" {
		return nil, c.errorf("name", "string must be non-empty")
	}
	return func(r *data.Record) bool { return r.Header(name) != nil }, nil
}
