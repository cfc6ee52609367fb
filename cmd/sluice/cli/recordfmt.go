package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
)

// recordFormat is a compiled --format string: literal text and the record
// fields it names, in order. It is compiled once so that a bad format is a
// usage error before anything is consumed, and so each record costs only
// appends.
type recordFormat []formatPart

type formatPart struct {
	literal []byte
	token   byte // 0 for a literal
}

const defaultFormat = `%s\n`

// formatTokens documents the % tokens; the usage text lists the same.
var formatTokens = map[byte]string{
	't': "topic",
	'p': "partition",
	'o': "offset",
	'k': "key",
	's': "value",
	'T': "timestamp (Unix milliseconds)",
	'h': "headers as k=v,k=v",
	'K': "key length in bytes (-1 for a null key)",
	'S': "value length in bytes (-1 for a null value)",
}

// compileFormat parses kcat-style format strings: %t %p %o %k %s %T %h %K
// %S, %% for a percent sign, and the escapes \n \t \r \\.
func compileFormat(s string) (recordFormat, error) {
	var f recordFormat
	var lit []byte
	flush := func() {
		if len(lit) > 0 {
			f = append(f, formatPart{literal: lit})
			lit = nil
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' && c != '\\' {
			lit = append(lit, c)
			continue
		}
		if i+1 == len(s) {
			return nil, fmt.Errorf("format %q ends with a lone %c", s, c)
		}
		i++
		next := s[i]
		if c == '\\' {
			switch next {
			case 'n':
				lit = append(lit, '\n')
			case 't':
				lit = append(lit, '\t')
			case 'r':
				lit = append(lit, '\r')
			case '\\':
				lit = append(lit, '\\')
			default:
				return nil, fmt.Errorf("format %q: unknown escape \\%c (want \\n, \\t, \\r or \\\\)", s, next)
			}
			continue
		}
		if next == '%' {
			lit = append(lit, '%')
			continue
		}
		if _, ok := formatTokens[next]; !ok {
			return nil, fmt.Errorf("format %q: unknown token %%%c (want one of %%t %%p %%o %%k %%s %%T %%h %%K %%S %%%%)", s, next)
		}
		flush()
		f = append(f, formatPart{token: next})
	}
	flush()
	return f, nil
}

// appendRecord renders r into buf.
func (f recordFormat) appendRecord(buf []byte, r *kgo.Record) []byte {
	for _, p := range f {
		switch p.token {
		case 0:
			buf = append(buf, p.literal...)
		case 't':
			buf = append(buf, r.Topic...)
		case 'p':
			buf = strconv.AppendInt(buf, int64(r.Partition), 10)
		case 'o':
			buf = strconv.AppendInt(buf, r.Offset, 10)
		case 'k':
			buf = append(buf, r.Key...)
		case 's':
			buf = append(buf, r.Value...)
		case 'T':
			buf = strconv.AppendInt(buf, r.Timestamp.UnixMilli(), 10)
		case 'h':
			for i, h := range r.Headers {
				if i > 0 {
					buf = append(buf, ',')
				}
				buf = append(buf, h.Key...)
				buf = append(buf, '=')
				buf = append(buf, h.Value...)
			}
		case 'K':
			buf = strconv.AppendInt(buf, nullableLen(r.Key), 10)
		case 'S':
			buf = strconv.AppendInt(buf, nullableLen(r.Value), 10)
		}
	}
	return buf
}

// nullableLen is Kafka's length of a nullable byte field: -1 for null.
func nullableLen(b []byte) int64 {
	if b == nil {
		return -1
	}
	return int64(len(b))
}

// jsonRecord is one line of "consume --json"; its json tags are the
// scripting interface. Keys, values and header values are strings (invalid
// UTF-8 comes out as U+FFFD); a null key or value is null.
type jsonRecord struct {
	Topic     string       `json:"topic"`
	Partition int32        `json:"partition"`
	Offset    int64        `json:"offset"`
	Timestamp int64        `json:"timestamp"` // Unix milliseconds
	Key       *string      `json:"key"`
	Value     *string      `json:"value"`
	Headers   []jsonHeader `json:"headers"`
}

type jsonHeader struct {
	Key   string  `json:"key"`
	Value *string `json:"value"`
}

func nullableString(b []byte) *string {
	if b == nil {
		return nil
	}
	s := string(b)
	return &s
}

func toJSONRecord(r *kgo.Record) jsonRecord {
	j := jsonRecord{
		Topic:     r.Topic,
		Partition: r.Partition,
		Offset:    r.Offset,
		Timestamp: r.Timestamp.UnixMilli(),
		Key:       nullableString(r.Key),
		Value:     nullableString(r.Value),
		Headers:   make([]jsonHeader, 0, len(r.Headers)),
	}
	for _, h := range r.Headers {
		j.Headers = append(j.Headers, jsonHeader{Key: h.Key, Value: nullableString(h.Value)})
	}
	return j
}

// recordWriter prints consumed records one way or the other.
type recordWriter struct {
	w      io.Writer
	format recordFormat // nil with --json
	enc    *json.Encoder
	buf    []byte
}

func newRecordWriter(w io.Writer, format recordFormat, asJSON bool) *recordWriter {
	rw := &recordWriter{w: w, format: format}
	if asJSON {
		rw.enc = json.NewEncoder(w)
		// Record data is not HTML: keep <, > and & as they are.
		rw.enc.SetEscapeHTML(false)
	}
	return rw
}

func (rw *recordWriter) write(r *kgo.Record) error {
	if rw.enc != nil {
		return rw.enc.Encode(toJSONRecord(r)) // one compact object per line
	}
	rw.buf = rw.format.appendRecord(rw.buf[:0], r)
	_, err := rw.w.Write(rw.buf)
	return err
}
