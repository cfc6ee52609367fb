package main

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/sluice-io/sluice/connect/convert"
	"github.com/sluice-io/sluice/connect/data"
)

// Formats of the files.
const (
	formatRaw    = "raw"    // the value's text, one line per record
	formatNDJSON = "ndjson" // one JSON object per line
	formatJSON   = "json"   // the file is one JSON array of objects, one per line
)

// Fields a json or ndjson object may carry besides "value".
var allFields = []string{"topic", "partition", "offset", "timestamp", "key", "headers"}

// encoder writes records as lines.
type encoder struct {
	format string
	fields map[string]bool
	json   *convert.JSONConverter // schemas.enable=false: plain JSON
}

func newEncoder(format string, fields []string) (*encoder, error) {
	jc := &convert.JSONConverter{}
	if err := jc.Configure(map[string]string{convert.SchemasEnableConfig: "false"}, false); err != nil {
		return nil, err
	}
	e := &encoder{format: format, fields: map[string]bool{}, json: jc}
	for _, f := range fields {
		e.fields[f] = true
	}
	return e, nil
}

// header, separator and footer frame the lines of a file: a json file is
// an array, so it opens, separates and closes it.
func (e *encoder) header() []byte {
	if e.format == formatJSON {
		return []byte("[\n")
	}
	return nil
}

func (e *encoder) separator() []byte {
	if e.format == formatJSON {
		return []byte(",\n")
	}
	return nil
}

func (e *encoder) footer() []byte {
	if e.format == formatJSON {
		return []byte("\n]\n")
	}
	return nil
}

// line appends one record to dst: without its newline for json (the
// separator adds it), with it otherwise.
func (e *encoder) line(dst []byte, r *data.Record, topic string, partition int32, offset int64) ([]byte, error) {
	if e.format == formatRaw {
		switch v := r.Value.(type) {
		case nil:
		case []byte:
			dst = append(dst, v...)
		case string:
			dst = append(dst, v...)
		default:
			b, err := e.json.FromConnect(r.Topic, r.ValueSchema, r.Value)
			if err != nil {
				return dst, err
			}
			dst = append(dst, b...)
		}
		return append(dst, '\n'), nil
	}
	dst = append(dst, '{')
	if e.fields["topic"] {
		dst = append(dst, `"topic":`...)
		dst = appendString(dst, topic)
		dst = append(dst, ',')
	}
	if e.fields["partition"] {
		dst = append(dst, `"partition":`...)
		dst = strconv.AppendInt(dst, int64(partition), 10)
		dst = append(dst, ',')
	}
	if e.fields["offset"] {
		dst = append(dst, `"offset":`...)
		dst = strconv.AppendInt(dst, offset, 10)
		dst = append(dst, ',')
	}
	if e.fields["timestamp"] {
		dst = append(dst, `"timestamp":`...)
		if r.Timestamp < 0 {
			dst = append(dst, "null"...)
		} else {
			dst = strconv.AppendInt(dst, r.Timestamp, 10)
		}
		dst = append(dst, ',')
	}
	var err error
	if e.fields["key"] {
		dst = append(dst, `"key":`...)
		if dst, err = e.value(dst, r.Topic, r.KeySchema, r.Key); err != nil {
			return dst, err
		}
		dst = append(dst, ',')
	}
	if e.fields["headers"] {
		dst = append(dst, `"headers":[`...)
		for i, h := range r.Headers {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"key":`...)
			dst = appendString(dst, h.Key)
			dst = append(dst, `,"value":`...)
			if dst, err = e.value(dst, r.Topic, h.Schema, h.Value); err != nil {
				return dst, err
			}
			dst = append(dst, '}')
		}
		dst = append(dst, "],"...)
	}
	dst = append(dst, `"value":`...)
	if dst, err = e.value(dst, r.Topic, r.ValueSchema, r.Value); err != nil {
		return dst, err
	}
	dst = append(dst, '}')
	if e.format == formatNDJSON {
		dst = append(dst, '\n')
	}
	return dst, nil
}

// value appends a key, header or value as JSON: text that is JSON already
// (what a String or ByteArray converter hands over for JSON messages) as
// it is, compacted to one line; other text as a JSON string; bytes that
// are not text in base64, as JsonConverter writes bytes; structured values
// as JsonConverter writes them.
func (e *encoder) value(dst []byte, topic string, s *data.Schema, v any) ([]byte, error) {
	var text []byte
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case string:
		text = []byte(x)
	case []byte:
		if !utf8.Valid(x) {
			b, err := e.json.FromConnect(topic, data.BytesSchema, x)
			return append(dst, b...), err
		}
		text = x
	default:
		b, err := e.json.FromConnect(topic, s, v)
		return append(dst, b...), err
	}
	if json.Valid(text) {
		buf := bytes.NewBuffer(dst)
		if err := json.Compact(buf, text); err == nil {
			return buf.Bytes(), nil
		}
	}
	return appendString(dst, string(text)), nil
}

func appendString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s)
	return append(dst, b...)
}
