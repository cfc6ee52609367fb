package transform

import (
	"strings"
	"testing"
	"time"

	"github.com/sluice-io/sluice/connect/data"
)

type smtCase struct {
	name string
	kv   []string // the transform's own props, without the transforms.x. prefix
	in   *data.Record
	want *data.Record // nil = dropped
	err  string       // substring of an Apply error
}

// runSMT runs each case through a one-transform chain of class.
func runSMT(t *testing.T, class string, cases []smtCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kv := []string{"transforms=x", "transforms.x.type=" + class}
			for _, p := range tc.kv {
				kv = append(kv, "transforms.x."+p)
			}
			c := mustChain(t, kv...)
			got, err := c.Apply(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			assertRecord(t, got, tc.want)
		})
	}
}

func assertRecord(t *testing.T, got, want *data.Record) {
	t.Helper()
	if (got == nil) != (want == nil) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if got == nil {
		return
	}
	if got.Topic != want.Topic || got.Partition != want.Partition || got.Timestamp != want.Timestamp {
		t.Errorf("topic/partition/timestamp %s/%d/%d, want %s/%d/%d", got.Topic, got.Partition, got.Timestamp, want.Topic, want.Partition, want.Timestamp)
	}
	if !got.KeySchema.Equal(want.KeySchema) || !data.ValueEqual(got.Key, want.Key) {
		t.Errorf("key %v %v, want %v %v", got.KeySchema, got.Key, want.KeySchema, want.Key)
	}
	if !got.ValueSchema.Equal(want.ValueSchema) || !data.ValueEqual(got.Value, want.Value) {
		t.Errorf("value %v %v\n want %v %v", got.ValueSchema, got.Value, want.ValueSchema, want.Value)
	}
	if len(got.Headers) != len(want.Headers) {
		t.Fatalf("headers %+v, want %+v", got.Headers, want.Headers)
	}
	for i := range got.Headers {
		g, w := got.Headers[i], want.Headers[i]
		if g.Key != w.Key || !g.Schema.Equal(w.Schema) || !data.ValueEqual(g.Value, w.Value) {
			t.Errorf("header %d %+v, want %+v", i, g, w)
		}
	}
}

// r builds a record: topic "t", no partition or timestamp.
func r(keySchema *data.Schema, key any, valueSchema *data.Schema, value any) *data.Record {
	return &data.Record{Topic: "t", Partition: -1, Timestamp: -1, KeySchema: keySchema, Key: key, ValueSchema: valueSchema, Value: value}
}

func with(rc *data.Record, f func(*data.Record)) *data.Record { f(rc); return rc }

var (
	userSchema = data.StructOf("user", data.F("id", data.Int64Schema), data.F("name", data.OptionalStringSchema), data.F("ssn", data.OptionalStringSchema))
	user       = data.NewStruct(userSchema).MustPut("id", int64(42)).MustPut("name", "ann").MustPut("ssn", "123")
)

func TestInsertField(t *testing.T) {
	sink := func(rc *data.Record) *data.Record {
		return with(rc, func(x *data.Record) {
			x.Partition, x.Timestamp, x.KafkaOffset, x.OriginalTopic = 3, 1700000000000, 99, "t"
		})
	}
	out := data.StructOf("user", data.F("id", data.Int64Schema), data.F("name", data.OptionalStringSchema), data.F("ssn", data.OptionalStringSchema),
		data.F("topic", data.OptionalStringSchema), data.F("part", data.Int32Schema), data.F("ts", data.TimestampSchema.AsOptional()),
		data.F("src", data.OptionalStringSchema))
	runSMT(t, "org.apache.kafka.connect.transforms.InsertField$Value", []smtCase{
		{name: "schemaless, as Kafka's docs example",
			kv:   []string{"topic.field=topic", "static.field=MessageSource", "static.value=Kafka Connect framework"},
			in:   r(nil, nil, nil, map[string]any{"foo": "bar"}),
			want: r(nil, nil, nil, map[string]any{"foo": "bar", "topic": "t", "MessageSource": "Kafka Connect framework"})},
		{name: "schemaless sink metadata",
			kv:   []string{"partition.field=p", "offset.field=o", "timestamp.field=ts"},
			in:   sink(r(nil, nil, nil, map[string]any{})),
			want: sink(r(nil, nil, nil, map[string]any{"p": int32(3), "o": int64(99), "ts": int64(1700000000000)}))},
		{name: "struct gets new fields, ! makes one required",
			kv: []string{"topic.field=topic", "partition.field=part!", "timestamp.field=ts", "static.field=src", "static.value=db"},
			in: sink(r(nil, nil, userSchema, user)),
			want: sink(r(nil, nil, out, data.NewStruct(out).MustPut("id", int64(42)).MustPut("name", "ann").MustPut("ssn", "123").
				MustPut("topic", "t").MustPut("part", int32(3)).MustPut("ts", time.UnixMilli(1700000000000)).MustPut("src", "db")))},
		{name: "tombstone passes", kv: []string{"topic.field=topic"}, in: r(nil, nil, userSchema, nil), want: r(nil, nil, userSchema, nil)},
		{name: "offset needs a sink record", kv: []string{"offset.field=o"}, in: r(nil, nil, nil, map[string]any{}), err: "only SinkRecord"},
		{name: "schemaless needs a map", kv: []string{"topic.field=topic"}, in: r(nil, nil, nil, "line"), err: "only Map objects supported"},
	})
	runSMT(t, "InsertField$Key", []smtCase{
		{name: "key side", kv: []string{"topic.field=topic"}, in: r(nil, map[string]any{}, nil, "v"), want: r(nil, map[string]any{"topic": "t"}, nil, "v")},
	})
}

func TestReplaceField(t *testing.T) {
	renamed := data.StructOf("user", data.F("user_id", data.Int64Schema), data.F("name", data.OptionalStringSchema))
	runSMT(t, "org.apache.kafka.connect.transforms.ReplaceField$Value", []smtCase{
		{name: "exclude and rename, schemaless",
			kv:   []string{"exclude=ssn", "renames=id:user_id"},
			in:   r(nil, nil, nil, map[string]any{"id": int64(1), "ssn": "x", "name": "ann"}),
			want: r(nil, nil, nil, map[string]any{"user_id": int64(1), "name": "ann"})},
		{name: "include wins only where exclude does not",
			kv:   []string{"include=id,ssn", "exclude=ssn"},
			in:   r(nil, nil, nil, map[string]any{"id": int64(1), "ssn": "x", "name": "ann"}),
			want: r(nil, nil, nil, map[string]any{"id": int64(1)})},
		{name: "struct",
			kv:   []string{"exclude=ssn", "renames=id:user_id"},
			in:   r(nil, nil, userSchema, user),
			want: r(nil, nil, renamed, data.NewStruct(renamed).MustPut("user_id", int64(42)).MustPut("name", "ann"))},
		{name: "Kafka 3 blacklist alias", kv: []string{"blacklist=ssn,name"},
			in: r(nil, nil, nil, map[string]any{"id": int64(1), "ssn": "x", "name": "ann"}), want: r(nil, nil, nil, map[string]any{"id": int64(1)})},
	})
}

func TestValueToKeyAndExtractField(t *testing.T) {
	keySchema := data.StructOf("", data.F("id", data.Int64Schema))
	runSMT(t, "org.apache.kafka.connect.transforms.ValueToKey", []smtCase{
		{name: "struct", kv: []string{"fields=id"}, in: r(nil, nil, userSchema, user),
			want: r(keySchema, data.NewStruct(keySchema).MustPut("id", int64(42)), userSchema, user)},
		{name: "schemaless", kv: []string{"fields=id,missing"}, in: r(nil, nil, nil, map[string]any{"id": int64(7), "x": "y"}),
			want: r(nil, map[string]any{"id": int64(7), "missing": nil}, nil, map[string]any{"id": int64(7), "x": "y"})},
		{name: "unknown field", kv: []string{"fields=nope"}, in: r(nil, nil, userSchema, user), err: "field does not exist: nope"},
	})
	nested := data.StructOf("outer", data.F("after", userSchema))
	runSMT(t, "org.apache.kafka.connect.transforms.ExtractField$Key", []smtCase{
		{name: "Kafka docs: id from key struct", kv: []string{"field=id"}, in: r(userSchema, user, nil, "v"), want: r(data.Int64Schema, int64(42), nil, "v")},
		{name: "schemaless", kv: []string{"field=id"}, in: r(nil, map[string]any{"id": int64(3)}, nil, nil), want: r(nil, int64(3), nil, nil)},
		{name: "null key passes", kv: []string{"field=id"}, in: r(nil, nil, nil, "v"), want: r(nil, nil, nil, "v")},
		{name: "unknown field", kv: []string{"field=zz"}, in: r(userSchema, user, nil, nil), err: "unknown field: zz"},
	})
	runSMT(t, "ExtractField$Value", []smtCase{
		{name: "V2 nested path", kv: []string{"field=after.name", "field.syntax.version=V2"},
			in: r(nil, nil, nested, data.NewStruct(nested).MustPut("after", user)), want: r(nil, nil, data.OptionalStringSchema, "ann")},
		{name: "V1 treats dots as part of the name", kv: []string{"field=a.b"},
			in: r(nil, nil, nil, map[string]any{"a.b": int64(1), "a": map[string]any{"b": int64(2)}}), want: r(nil, nil, nil, int64(1))},
		{name: "V2 backticks keep dots", kv: []string{"field=`a.b`.c", "field.syntax.version=v2"},
			in: r(nil, nil, nil, map[string]any{"a.b": map[string]any{"c": "deep"}}), want: r(nil, nil, nil, "deep")},
	})
}

func TestHoistAndFlatten(t *testing.T) {
	hoisted := data.StructOf("", data.F("line", data.StringSchema))
	runSMT(t, "org.apache.kafka.connect.transforms.HoistField$Value", []smtCase{
		{name: "Kafka docs: 42 becomes {line: 42}", kv: []string{"field=line"}, in: r(nil, nil, nil, int64(42)), want: r(nil, nil, nil, map[string]any{"line": int64(42)})},
		{name: "with schema", kv: []string{"field=line"}, in: r(nil, nil, data.StringSchema, "hello"),
			want: r(nil, nil, hoisted, data.NewStruct(hoisted).MustPut("line", "hello"))},
	})
	inner := data.StructOf("inner", data.F("b", data.Int32Schema), data.F("c", data.OptionalStringSchema))
	outer := data.StructOf("outer", data.F("a", inner.AsOptional()), data.F("d", data.BooleanSchema))
	flat := data.StructOf("outer", data.F("a_b", data.OptionalInt32Schema), data.F("a_c", data.OptionalStringSchema), data.F("d", data.BooleanSchema))
	runSMT(t, "org.apache.kafka.connect.transforms.Flatten$Value", []smtCase{
		{name: "schemaless", in: r(nil, nil, nil, map[string]any{"a": map[string]any{"b": int64(1), "c": map[string]any{"d": "x"}}, "e": []any{int64(1)}}),
			want: r(nil, nil, nil, map[string]any{"a.b": int64(1), "a.c.d": "x", "e": []any{int64(1)}})},
		{name: "struct, fields under an optional parent become optional", kv: []string{"delimiter=_"},
			in:   r(nil, nil, outer, data.NewStruct(outer).MustPut("a", data.NewStruct(inner.AsOptional()).MustPut("b", int32(5))).MustPut("d", true)),
			want: r(nil, nil, flat, data.NewStruct(flat).MustPut("a_b", int32(5)).MustPut("d", true))},
	})
}

func TestMaskField(t *testing.T) {
	runSMT(t, "org.apache.kafka.connect.transforms.MaskField$Value", []smtCase{
		{name: "zero values by type", kv: []string{"fields=i,s,b,f,l,m"},
			in:   r(nil, nil, nil, map[string]any{"i": int32(5), "s": "secret", "b": true, "f": 1.5, "l": []any{"x"}, "m": map[string]any{"k": "v"}, "keep": "k"}),
			want: r(nil, nil, nil, map[string]any{"i": int32(0), "s": "", "b": false, "f": 0.0, "l": []any{}, "m": map[string]any{}, "keep": "k"})},
		{name: "custom replacement", kv: []string{"fields=ssn", "replacement=***-**-****"},
			in:   r(nil, nil, userSchema, user),
			want: r(nil, nil, userSchema, data.NewStruct(userSchema).MustPut("id", int64(42)).MustPut("name", "ann").MustPut("ssn", "***-**-****"))},
		{name: "numeric replacement", kv: []string{"fields=id", "replacement=-1"},
			in: r(nil, nil, nil, map[string]any{"id": int64(42)}), want: r(nil, nil, nil, map[string]any{"id": int64(-1)})},
		{name: "replacement not a number", kv: []string{"fields=id", "replacement=x"},
			in: r(nil, nil, nil, map[string]any{"id": int64(42)}), err: "unable to convert x"},
		{name: "bytes cannot be masked", kv: []string{"fields=b"}, in: r(nil, nil, nil, map[string]any{"b": []byte{1}}), err: "cannot mask value of type"},
	})
}

func TestCast(t *testing.T) {
	in := data.StructOf("rec", data.F("a", data.StringSchema), data.F("b", data.OptionalInt64Schema), data.F("c", data.BytesSchema))
	out := data.StructOf("rec", data.F("a", data.Int32Schema), data.F("b", data.OptionalInt8Schema), data.F("c", data.StringSchema))
	runSMT(t, "org.apache.kafka.connect.transforms.Cast$Value", []smtCase{
		{name: "schemaless fields, Java narrowing", kv: []string{"spec=a:int32,b:int8,c:boolean,d:string,e:int16"},
			in:   r(nil, nil, nil, map[string]any{"a": "42", "b": int64(300), "c": "TRUE", "d": 1.0, "e": 70000.5}),
			want: r(nil, nil, nil, map[string]any{"a": int32(42), "b": int8(44), "c": true, "d": "1.0", "e": int16(4464)})},
		{name: "booleans and numbers", kv: []string{"spec=t:int32,n:boolean,f:boolean"},
			in:   r(nil, nil, nil, map[string]any{"t": true, "n": int64(-3), "f": 0.5}),
			want: r(nil, nil, nil, map[string]any{"t": int32(1), "n": true, "f": false})},
		{name: "whole value", kv: []string{"spec=int64"}, in: r(nil, nil, data.StringSchema, "123"), want: r(nil, nil, data.Int64Schema, int64(123))},
		{name: "struct with schema", kv: []string{"spec=a:int32,b:int8,c:string"},
			in:   r(nil, nil, in, data.NewStruct(in).MustPut("a", "7").MustPut("c", []byte("hi!"))),
			want: r(nil, nil, out, data.NewStruct(out).MustPut("a", int32(7)).MustPut("c", "aGkh"))},
		{name: "unparseable string", kv: []string{"spec=int8"}, in: r(nil, nil, nil, "300"), err: "out of range"},
		{name: "whole value keeps the schema name, as Kafka", kv: []string{"spec=int64"}, in: r(nil, nil, data.TimestampSchema, time.UnixMilli(1234)), want: r(nil, nil, &data.Schema{Type: data.TypeInt64, Name: data.TimestampName, Version: 1}, int64(1234))},
	})
}

func TestTimestampConverter(t *testing.T) {
	ts := time.Date(2017, 1, 1, 13, 14, 15, 16e6, time.UTC)
	withTS := data.StructOf("ev", data.F("ts", data.Int64Schema), data.F("x", data.StringSchema))
	asString := data.StructOf("ev", data.F("ts", data.StringSchema), data.F("x", data.StringSchema))
	runSMT(t, "org.apache.kafka.connect.transforms.TimestampConverter$Value", []smtCase{
		{name: "Kafka docs: unix field to formatted string", kv: []string{"field=ts", "target.type=string", "format=yyyy-MM-dd"},
			in:   r(nil, nil, withTS, data.NewStruct(withTS).MustPut("ts", ts.UnixMilli()).MustPut("x", "y")),
			want: r(nil, nil, asString, data.NewStruct(asString).MustPut("ts", "2017-01-01").MustPut("x", "y"))},
		{name: "string to Timestamp, schemaless", kv: []string{"field=ts", "target.type=Timestamp", "format=yyyy-MM-dd'T'HH:mm:ss.SSSX"},
			in: r(nil, nil, nil, map[string]any{"ts": "2017-01-01T13:14:15.016Z"}), want: r(nil, nil, nil, map[string]any{"ts": ts})},
		{name: "whole value unix seconds to Date", kv: []string{"target.type=Date", "unix.precision=seconds"},
			in: r(nil, nil, data.Int64Schema, ts.Unix()), want: r(nil, nil, data.DateSchema, time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC))},
		{name: "Timestamp to Time keeps the time of day", kv: []string{"target.type=Time"},
			in: r(nil, nil, data.TimestampSchema.AsOptional(), ts), want: r(nil, nil, data.TimeSchema.AsOptional(), time.UnixMilli(47655016).UTC())},
		{name: "Timestamp to unix micros", kv: []string{"target.type=unix", "unix.precision=microseconds"},
			in: r(nil, nil, nil, ts), want: r(nil, nil, nil, ts.UnixMilli()*1000)},
		{name: "string that does not match", kv: []string{"target.type=unix", "format=yyyy-MM-dd"},
			in: r(nil, nil, nil, "Jan 1"), err: "does not match pattern"},
	})
}

func TestRouters(t *testing.T) {
	runSMT(t, "org.apache.kafka.connect.transforms.RegexRouter", []smtCase{
		{name: "Kafka docs: keep the table name", kv: []string{`regex=([^.]+)\.([^.]+)\.([^.]+)`, "replacement=$3"},
			in: with(r(nil, nil, nil, "v"), func(x *data.Record) { x.Topic = "db.schema.orders" }), want: with(r(nil, nil, nil, "v"), func(x *data.Record) { x.Topic = "orders" })},
		{name: "Java group syntax: $1x is group 1 then x", kv: []string{"regex=(.*)-raw", `replacement=$1x\$`},
			in: with(r(nil, nil, nil, "v"), func(x *data.Record) { x.Topic = "logs-raw" }), want: with(r(nil, nil, nil, "v"), func(x *data.Record) { x.Topic = "logsx$" })},
		{name: "Java group syntax: $12 with one group is group 1 then 2", kv: []string{"regex=(.*)-raw", "replacement=$12"},
			in: with(r(nil, nil, nil, "v"), func(x *data.Record) { x.Topic = "logs-raw" }), want: with(r(nil, nil, nil, "v"), func(x *data.Record) { x.Topic = "logs2" })},
		{name: "no match leaves the topic", kv: []string{"regex=x.*", "replacement=y"}, in: r(nil, nil, nil, "v"), want: r(nil, nil, nil, "v")},
	})
	stamped := func(topic string) *data.Record {
		return with(r(nil, nil, nil, "v"), func(x *data.Record) {
			x.Topic, x.Timestamp = topic, time.Date(2024, 2, 29, 23, 0, 0, 0, time.UTC).UnixMilli()
		})
	}
	runSMT(t, "org.apache.kafka.connect.transforms.TimestampRouter", []smtCase{
		{name: "defaults", in: stamped("t"), want: stamped("t-20240229")},
		{name: "custom", kv: []string{"topic.format=${timestamp}_${topic}", "timestamp.format=yyyy.MM"}, in: stamped("t"), want: stamped("2024.02_t")},
		{name: "no timestamp", in: r(nil, nil, nil, "v"), err: "timestamp missing"},
	})
}

func TestHeaderSMTs(t *testing.T) {
	hdr := func(rc *data.Record, hs ...data.Header) *data.Record { rc.Headers = hs; return rc }
	moved := data.StructOf("user", data.F("id", data.Int64Schema), data.F("name", data.OptionalStringSchema))
	runSMT(t, "org.apache.kafka.connect.transforms.HeaderFrom$Value", []smtCase{
		{name: "move with schema", kv: []string{"fields=ssn", "headers=x-ssn", "operation=move"},
			in: r(nil, nil, userSchema, user),
			want: hdr(r(nil, nil, moved, data.NewStruct(moved).MustPut("id", int64(42)).MustPut("name", "ann")),
				data.Header{Key: "x-ssn", Schema: data.OptionalStringSchema, Value: "123"})},
		{name: "copy schemaless", kv: []string{"fields=a", "headers=h", "operation=copy"},
			in:   r(nil, nil, nil, map[string]any{"a": int64(1)}),
			want: hdr(r(nil, nil, nil, map[string]any{"a": int64(1)}), data.Header{Key: "h", Value: int64(1)})},
	})
	runSMT(t, "org.apache.kafka.connect.transforms.InsertHeader", []smtCase{
		{name: "literal parsed as Kafka's Values", kv: []string{"header=n", "value.literal=42"},
			in: r(nil, nil, nil, "v"), want: hdr(r(nil, nil, nil, "v"), data.Header{Key: "n", Schema: data.Int8Schema, Value: int8(42)})},
	})
	runSMT(t, "org.apache.kafka.connect.transforms.DropHeaders", []smtCase{
		{name: "drops every header with a listed name", kv: []string{"headers=a,b"},
			in:   hdr(r(nil, nil, nil, "v"), data.Header{Key: "a"}, data.Header{Key: "c", Value: "keep"}, data.Header{Key: "b"}, data.Header{Key: "a"}),
			want: hdr(r(nil, nil, nil, "v"), data.Header{Key: "c", Value: "keep"})},
	})
	named := data.StructOf("com.example.User", userSchema.Fields...)
	named.Version = 2
	runSMT(t, "org.apache.kafka.connect.transforms.SetSchemaMetadata$Value", []smtCase{
		{name: "rename and version", kv: []string{"schema.name=com.example.User", "schema.version=2"},
			in: r(nil, nil, userSchema, user), want: r(nil, nil, named, data.NewStruct(named).MustPut("id", int64(42)).MustPut("name", "ann").MustPut("ssn", "123"))},
		{name: "needs a schema", kv: []string{"schema.name=x"}, in: r(nil, nil, nil, "v"), err: "schema required"},
	})
}
