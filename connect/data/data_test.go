package data

import (
	"math/big"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	person := StructOf("person", F("name", StringSchema), F("age", OptionalInt32Schema))
	ok := NewStruct(person).MustPut("name", "ann")
	tests := []struct {
		name   string
		schema *Schema
		v      any
		err    string // substring; "" = valid
	}{
		{"int8", Int8Schema, int8(1), ""},
		{"int8 wrong go type", Int8Schema, int32(1), "with type INT8: int32"},
		{"null required", StringSchema, nil, "null used for required value"},
		{"null optional", OptionalStringSchema, nil, ""},
		{"bytes", BytesSchema, []byte("x"), ""},
		{"array", ArrayOf(Int64Schema), []any{int64(1), int64(2)}, ""},
		{"array bad element", ArrayOf(Int64Schema), []any{int64(1), "x"}, "element of array value"},
		{"array no items", &Schema{Type: TypeArray}, []any{}, "no schema defined"},
		{"string map", MapOf(StringSchema, Int32Schema), map[string]any{"a": int32(1)}, ""},
		{"string map bad value", MapOf(StringSchema, Int32Schema), map[string]any{"a": "b"}, "value of map value"},
		{"int map", MapOf(Int32Schema, StringSchema), &Map{Entries: []MapEntry{{int32(1), "a"}}}, ""},
		{"int map given string keys", MapOf(Int32Schema, StringSchema), map[string]any{"1": "a"}, "key of map value"},
		{"struct", person, ok, ""},
		{"struct missing required", person, NewStruct(person), `field: "name"`},
		{"struct other schema", StructOf("other", F("name", StringSchema)), ok, "struct schemas do not match"},
		{"decimal", DecimalSchema(2), NewDecimal(123, 2), ""},
		{"decimal as bytes", DecimalSchema(2), []byte{1}, `"org.apache.kafka.connect.data.Decimal" with type BYTES`},
		{"timestamp", TimestampSchema, time.UnixMilli(5), ""},
		{"timestamp as int64", TimestampSchema, int64(5), "with type INT64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.schema.Validate(tc.v)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want containing %q", err, tc.err)
			}
		})
	}
}

func TestStructGetPut(t *testing.T) {
	s := StructOf("s", F("a", &Schema{Type: TypeInt32, Optional: true, Default: int32(7)}), F("b", StringSchema))
	st := NewStruct(s)
	if got := st.Get("a"); got != int32(7) {
		t.Fatalf("Get default = %v", got)
	}
	if got := st.GetWithoutDefault("a"); got != nil {
		t.Fatalf("GetWithoutDefault = %v", got)
	}
	if err := st.Put("a", "x"); err == nil {
		t.Fatal("Put of a string into an int32 field succeeded")
	}
	if err := st.Put("zz", 1); err == nil || !strings.Contains(err.Error(), "zz is not a valid field name") {
		t.Fatalf("Put unknown field: %v", err)
	}
	if err := st.Validate(); err == nil {
		t.Fatal("Validate passed with required field b unset")
	}
	st.MustPut("b", "x")
	if err := st.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := st.String(); got != "Struct{b=x}" {
		t.Fatalf("String = %q", got)
	}
}

func TestDecimalBytes(t *testing.T) {
	for _, tc := range []struct {
		dec  string
		want []byte
	}{
		{"0.00", []byte{0}},
		{"1.27", []byte{0x7f}},
		{"1.28", []byte{0x00, 0x80}},
		{"-1.28", []byte{0x80}},
		{"-1.29", []byte{0xff, 0x7f}},
		{"-0.01", []byte{0xff}},
		{"655.36", []byte{0x01, 0x00, 0x00}},
	} {
		d, err := ParseDecimal(tc.dec)
		if err != nil {
			t.Fatal(err)
		}
		b, err := DecimalToBytes(DecimalSchema(2), d)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != string(tc.want) {
			t.Errorf("%s: bytes %x, want %x", tc.dec, b, tc.want)
		}
		back, err := DecimalFromBytes(DecimalSchema(2), b)
		if err != nil || back.String() != tc.dec {
			t.Errorf("%s: round trip %v %v", tc.dec, back, err)
		}
	}
	if _, err := DecimalToBytes(DecimalSchema(3), NewDecimal(1, 2)); err == nil {
		t.Error("scale mismatch accepted")
	}
	d, _ := ParseDecimal("1.5E+2")
	if d.Scale != -1 || d.Unscaled.Cmp(big.NewInt(15)) != 0 || d.PlainString() != "150" || d.String() != "1.5E+2" {
		t.Errorf("1.5E+2 parsed as %+v %s", d, d)
	}
}

func TestDateTime(t *testing.T) {
	day := time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)
	n, err := DateToDays(day)
	if err != nil || n != 19782 || !DateFromDays(n).Equal(day) {
		t.Fatalf("date %d %v", n, err)
	}
	if _, err := DateToDays(day.Add(time.Second)); err == nil {
		t.Error("date with a time of day accepted")
	}
	if _, err := TimeToMillis(day); err == nil {
		t.Error("time with a date accepted")
	}
	tm, err := TimeToMillis(time.UnixMilli(3_600_000))
	if err != nil || tm != 3_600_000 {
		t.Fatalf("time %d %v", tm, err)
	}
}

func TestRecordCloneIsDeep(t *testing.T) {
	s := StructOf("s", F("b", BytesSchema), F("m", MapOf(StringSchema, ArrayOf(Int32Schema))))
	st := NewStruct(s).MustPut("b", []byte("abc")).MustPut("m", map[string]any{"k": []any{int32(1)}})
	r := &Record{Topic: "t", Value: st, Key: map[string]any{"x": []byte("k")},
		Headers:         []Header{{Key: "h", Value: []byte("v")}},
		SourcePartition: map[string]any{"file": "f"}, SourceOffset: map[string]any{"pos": int64(1)}}
	c := r.Clone()
	if !ValueEqual(c.Value, r.Value) || !ValueEqual(c.Key, r.Key) {
		t.Fatal("clone differs")
	}
	c.Value.(*Struct).Get("b").([]byte)[0] = 'X'
	c.Value.(*Struct).Get("m").(map[string]any)["k"].([]any)[0] = int32(9)
	c.Key.(map[string]any)["x"].([]byte)[0] = 'Z'
	c.Headers[0].Value.([]byte)[0] = 'W'
	c.SourceOffset["pos"] = int64(2)
	if string(st.Get("b").([]byte)) != "abc" || st.Get("m").(map[string]any)["k"].([]any)[0] != int32(1) ||
		string(r.Key.(map[string]any)["x"].([]byte)) != "k" || string(r.Headers[0].Value.([]byte)) != "v" ||
		r.SourceOffset["pos"] != int64(1) {
		t.Fatal("mutating the clone changed the original")
	}
}

func TestParseString(t *testing.T) {
	ts := time.Date(2024, 2, 29, 10, 11, 12, 13e6, time.UTC)
	for _, tc := range []struct {
		in string
		s  *Schema
		v  any
	}{
		{"", StringSchema, ""},
		{"null", nil, nil},
		{"true", BooleanSchema, true},
		{"-129", Int16Schema, int16(-129)},
		{"9223372036854775807", Int64Schema, int64(9223372036854775807)},
		{"1.5", Float32Schema, float32(1.5)},
		{"12 apples", StringSchema, "12 apples"},
		{"2024-02-29T10:11:12.013Z", TimestampSchema, ts},
		{"[1, 2, 300]", ArrayOf(Int16Schema), []any{int16(1), int16(2), int16(300)}},
		{"[1, 2.5]", ArrayOf(Float32Schema), []any{float32(1), float32(2.5)}},
		{`["a", true]`, ArrayOf(nil), []any{"a", true}},
		{`[1, null]`, StringSchema, `[1, null]`}, // as Kafka: no common schema with a null
		{`{"a":1,"b":"x"}`, MapOf(StringSchema, nil), map[string]any{"a": int8(1), "b": "x"}},
		{`{1:"a"}`, MapOf(Int8Schema, StringSchema), &Map{Entries: []MapEntry{{int8(1), "a"}}}},
		{`{"when":2024-02-29T10:11:12.013Z}`, MapOf(StringSchema, TimestampSchema), map[string]any{"when": ts}},
		{`[1, 2`, StringSchema, `[1, 2`},
		{`[x]`, StringSchema, `[x]`},
	} {
		s, v := ParseString(tc.in)
		if !s.Equal(tc.s) || !ValueEqual(v, tc.v) {
			t.Errorf("%q: %v %#v, want %v %#v", tc.in, s, v, tc.s, tc.v)
		}
	}
	// What ToString writes, ParseString reads back.
	for _, v := range []any{
		[]any{"a \"q\" \\ b", "c"},
		map[string]any{"k": []any{int8(1), int8(2)}},
		int32(70000),
		ts,
	} {
		_, back := ParseString(ToString(v))
		if !ValueEqual(back, v) {
			t.Errorf("%v: ToString %q read back as %#v", v, ToString(v), back)
		}
	}
}
