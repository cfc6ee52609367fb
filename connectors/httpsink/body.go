package main

import (
	"bytes"
	"encoding/json"

	"github.com/sluice-io/sluice/connect/convert"
	"github.com/sluice-io/sluice/connect/data"
)

// encoder turns record values into request bodies.
type encoder struct {
	format     string
	singleJSON bool                   // json bodies are one value, not an array (batch.json.as.array=false)
	json       *convert.JSONConverter // schemas.enable=false: plain JSON
}

func newEncoder(format string, singleJSON bool) (*encoder, error) {
	jc := &convert.JSONConverter{}
	if err := jc.Configure(map[string]string{convert.SchemasEnableConfig: "false"}, false); err != nil {
		return nil, err
	}
	return &encoder{format: format, singleJSON: singleJSON, json: jc}, nil
}

// element encodes one value as its part of a body. raw: bytes and strings
// as they are, anything else as JSON. json and ndjson: text that is
// already JSON (what a StringConverter or ByteArrayConverter hands over
// for JSON messages) is embedded as it is, compacted to one line; other
// text becomes a JSON string; structured values are written as JSON.
func (e *encoder) element(r *data.Record) ([]byte, error) {
	var text []byte
	switch v := r.Value.(type) {
	case nil:
		if e.format == formatRaw {
			return []byte{}, nil
		}
		return []byte("null"), nil
	case []byte:
		text = v
	case string:
		text = []byte(v)
	default:
		b, err := e.json.FromConnect(r.Topic, r.ValueSchema, r.Value)
		if err != nil {
			return nil, err
		}
		text = b
		if e.format == formatRaw {
			return b, nil
		}
	}
	if e.format == formatRaw {
		return text, nil
	}
	if json.Valid(text) {
		var buf bytes.Buffer
		buf.Grow(len(text))
		if err := json.Compact(&buf, text); err == nil {
			return buf.Bytes(), nil
		}
	}
	return json.Marshal(string(text))
}

// body joins a batch's elements.
func (e *encoder) body(batch []item) []byte {
	size := 2
	for _, it := range batch {
		size += len(it.body) + 1
	}
	out := make([]byte, 0, size)
	switch e.format {
	case formatNDJSON:
		for _, it := range batch {
			out = append(out, it.body...)
			out = append(out, '\n')
		}
	case formatJSON:
		if len(batch) == 1 && e.singleJSON {
			return append(out, batch[0].body...)
		}
		out = append(out, '[')
		for i, it := range batch {
			if i > 0 {
				out = append(out, ',')
			}
			out = append(out, it.body...)
		}
		out = append(out, ']')
	default:
		for _, it := range batch {
			out = append(out, it.body...)
		}
	}
	return out
}

func (e *encoder) contentType() string {
	switch e.format {
	case formatNDJSON:
		return "application/x-ndjson"
	case formatJSON:
		return "application/json"
	}
	return "application/octet-stream"
}
