package api

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// ConfigMap is a connector config as a request body carries it. Kafka's JSON
// reader turns numbers and booleans into their text ("tasks.max": 1 is "1"),
// and users rely on that, so ConfigMap does the same; JSON null values are
// refused because a full config has no use for them.
type ConfigMap map[string]string

// UnmarshalJSON reads an object of scalars, coercing numbers and booleans to text.
func (m *ConfigMap) UnmarshalJSON(b []byte) error {
	if string(bytes.TrimSpace(b)) == "null" {
		*m = nil
		return nil
	}
	p, err := decodeScalars(b)
	if err != nil {
		return err
	}
	out := make(ConfigMap, len(p))
	for k, v := range p {
		if v == nil {
			return fmt.Errorf("config value for %q must not be null", k)
		}
		out[k] = *v
	}
	*m = out
	return nil
}

// ConfigPatch is the body of PATCH /connectors/{c}/config: a nil value removes
// the key, any other value sets it (numbers and booleans as text).
type ConfigPatch map[string]*string

// UnmarshalJSON reads an object of scalars and nulls.
func (m *ConfigPatch) UnmarshalJSON(b []byte) error {
	if string(bytes.TrimSpace(b)) == "null" {
		*m = nil
		return nil
	}
	p, err := decodeScalars(b)
	if err != nil {
		return err
	}
	*m = p
	return nil
}

// Apply returns base with the patch applied, leaving base untouched.
func (m ConfigPatch) Apply(base map[string]string) map[string]string {
	out := make(map[string]string, len(base)+len(m))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range m {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = *v
		}
	}
	return out
}

func decodeScalars(b []byte) (map[string]*string, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	out := make(map[string]*string, len(raw))
	for k, r := range raw {
		r = bytes.TrimSpace(r)
		switch {
		case len(r) == 0 || string(r) == "null":
			out[k] = nil
		case r[0] == '"':
			var s string
			if err := json.Unmarshal(r, &s); err != nil {
				return nil, err
			}
			out[k] = &s
		case r[0] == '{' || r[0] == '[':
			return nil, fmt.Errorf("config value for %q must be a string, number or boolean", k)
		default: // number, true or false: keep the literal text
			s := string(r)
			out[k] = &s
		}
	}
	return out, nil
}
