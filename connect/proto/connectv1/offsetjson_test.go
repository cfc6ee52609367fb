package connectv1

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
)

// The fast paths must agree with encoding/json exactly, or decline.
func TestFlatJSONAgreesWithEncodingJSON(t *testing.T) {
	maps := []map[string]any{
		{},
		{"file": "/var/log/syslog", "pos": int64(123)},
		{"lsn": int64(math.MaxInt64), "neg": int64(-5), "zero": int64(0), "ok": true, "no": false, "none": nil},
		{"int": 7, "i32": int32(-7)},
		{"quote": `a"b`}, {"ctl": "a\nb"}, {"html": "<&>"}, {"uni": "é"},
		{"f": 1.5}, {"nested": map[string]any{"a": int64(1)}}, {"list": []any{int64(1)}},
	}
	for _, m := range maps {
		want, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := appendFlatJSON(nil, m)
		if ok && string(got) != string(want) {
			t.Errorf("%v: fast %s, encoding/json %s", m, got, want)
		}
		back, err := OffsetFromJSON(want)
		if err != nil {
			t.Fatal(err)
		}
		norm := map[string]any{}
		for k, v := range m {
			switch x := v.(type) {
			case int:
				v = int64(x)
			case int32:
				v = int64(x)
			}
			norm[k] = v
		}
		if !reflect.DeepEqual(back, norm) {
			t.Errorf("%s decoded to %#v, want %#v", want, back, norm)
		}
	}
	// Inputs the fast parser must decline (encoding/json then decides).
	for _, in := range []string{
		`{"a":01}`, `{"a":-}`, `{"a":1e3}`, `{"a":1.5}`, `{"a":"\u00e9"}`, `{ "a":1}`, `{"a":1,}`,
		`{"a":1}x`, `{"a":tru}`, `{"a":1,"a":2}`, `{"a":99999999999999999999}`, `{"a":-9223372036854775808}`,
		`{"a":{}}`, `{"a":[1]}`, `{`, `{"a"}`, `{"a":}`,
	} {
		if m, ok := parseFlatJSON([]byte(in)); ok {
			t.Errorf("fast parser accepted %s as %v", in, m)
		}
	}
	for _, in := range []string{`{}`, `{"a":-1}`, `{"a":0,"b":"x","c":null,"d":true,"e":false}`, `{"a":9223372036854775807}`} {
		fast, ok := parseFlatJSON([]byte(in))
		slow := map[string]any{}
		d := json.NewDecoder(strings.NewReader(in))
		d.UseNumber()
		if err := d.Decode(&slow); err != nil || !ok {
			t.Fatalf("%s: %v %v", in, err, ok)
		}
		if !reflect.DeepEqual(fast, fromJSONNumbers(slow)) {
			t.Errorf("%s: fast %#v, slow %#v", in, fast, slow)
		}
	}
}
