package convert

import (
	"testing"
	"time"

	"github.com/sluice-io/sluice/connect/data"
)

// The benchmarks use the values the connectors that motivated issue 20
// produce: a syslog message as connectors/syslog's toMap builds it
// (schemaless, schemas.enable=false) and a Debezium change event as
// connectors/postgrescdc builds it for perf/connectbench's 3-column
// table (schemas.enable=true).

// benchSyslogValue is a parsed RFC 5424 message with one SD element.
func benchSyslogValue() map[string]any {
	return map[string]any{
		"facility":  int64(4),
		"severity":  int64(2),
		"timestamp": "2026-12-05T05:24:10.123456Z",
		"hostname":  "mymachine.example.com",
		"app_name":  "su",
		"proc_id":   "4123",
		"msg_id":    "ID47",
		"structured_data": map[string]any{
			"exampleSDID@32473": map[string]any{"iut": "3", "eventSource": "Application", "eventID": "1011"},
		},
		"message":        "'su root' failed for lonvick on /dev/pts/8 after 3 attempts, user=\"lonvick\"",
		"format":         "rfc5424",
		"remote_address": "10.1.2.3:51514",
	}
}

// benchCDC mirrors connectors/postgrescdc's schemas (table.go) for
// CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, n int NOT NULL).
type benchCDC struct {
	row, env, source *data.Schema
}

func newBenchCDC() *benchCDC {
	snap := &data.Schema{Type: data.TypeString, Optional: true, Name: "io.debezium.data.Enum", Version: 1,
		Parameters: map[string]string{"allowed": "true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"},
		Default:    "false"}
	source := data.StructOf("io.debezium.connector.postgresql.Source",
		data.F("version", data.StringSchema), data.F("connector", data.StringSchema), data.F("name", data.StringSchema),
		data.F("ts_ms", data.Int64Schema), data.F("snapshot", snap), data.F("db", data.StringSchema),
		data.F("sequence", data.OptionalStringSchema), data.F("ts_us", data.OptionalInt64Schema),
		data.F("ts_ns", data.OptionalInt64Schema), data.F("schema", data.StringSchema), data.F("table", data.StringSchema),
		data.F("txId", data.OptionalInt64Schema), data.F("lsn", data.OptionalInt64Schema), data.F("xmin", data.OptionalInt64Schema))
	block := data.StructOf("event.block", data.F("id", data.StringSchema),
		data.F("total_order", data.Int64Schema), data.F("data_collection_order", data.Int64Schema))
	block.Optional, block.Version = true, 1
	base := "bench.public.items"
	row := data.StructOf(base+".Value", data.F("id", data.Int64Schema), data.F("name", data.StringSchema), data.F("n", data.Int32Schema))
	row.Optional = true
	env := data.StructOf(base+".Envelope",
		data.F("before", row), data.F("after", row), data.F("source", source),
		data.F("transaction", block), data.F("op", data.StringSchema),
		data.F("ts_ms", data.OptionalInt64Schema), data.F("ts_us", data.OptionalInt64Schema), data.F("ts_ns", data.OptionalInt64Schema))
	env.Version = 2
	return &benchCDC{row: row, env: env, source: source}
}

// event builds an update (before and after set) or an insert (before nil),
// as connectors/postgrescdc's task.event does.
func (c *benchCDC) event(i int64, update bool) *data.Struct {
	commit := time.UnixMilli(1764912250123).UTC()
	now := commit.Add(3 * time.Millisecond)
	s := data.NewStruct(c.source).
		MustPut("version", "2.7.0.Final").MustPut("connector", "postgresql").MustPut("name", "bench").
		MustPut("ts_ms", commit.UnixMilli()).MustPut("snapshot", "false").MustPut("db", "bench").
		MustPut("ts_us", commit.UnixMicro()).MustPut("ts_ns", commit.UnixNano()).
		MustPut("schema", "public").MustPut("table", "items").
		MustPut("txId", int64(7741)+i/1000).MustPut("lsn", int64(38221440)+i*120)
	op := "c"
	if update {
		op = "u"
	}
	env := data.NewStruct(c.env).MustPut("source", s).MustPut("op", op).
		MustPut("ts_ms", now.UnixMilli()).MustPut("ts_us", now.UnixMicro()).MustPut("ts_ns", now.UnixNano())
	after := data.NewStruct(c.row).MustPut("id", i).MustPut("name", "item-name-0000123").MustPut("n", int32(i%1000))
	env.MustPut("after", after)
	if update {
		before := data.NewStruct(c.row).MustPut("id", i).MustPut("name", "item-name-0000122").MustPut("n", int32(i%1000-1))
		env.MustPut("before", before)
	}
	return env
}

// jsonImpl is the converter under test: the optimized JSONConverter or
// the frozen pre-issue-20 one (refJSON), benchmarked side by side in one
// run as "new" and "old".
type jsonImpl interface {
	FromConnect(topic string, s *data.Schema, v any) ([]byte, error)
	ToConnect(topic string, b []byte) (*data.Schema, any, error)
}

type refImpl struct{ *refJSON }

func (r refImpl) FromConnect(t string, s *data.Schema, v any) ([]byte, error) {
	return r.refFromConnect(t, s, v)
}

func (r refImpl) ToConnect(t string, b []byte) (*data.Schema, any, error) {
	return r.refToConnect(t, b)
}

// newImpls returns the old and the new converter configured with props.
func newImpls(tb testing.TB, props map[string]string) []struct {
	name string
	c    jsonImpl
} {
	c := &JSONConverter{}
	if err := c.Configure(props, false); err != nil {
		tb.Fatal(err)
	}
	r := &refJSON{}
	if err := r.refConfigure(props, false); err != nil {
		tb.Fatal(err)
	}
	return []struct {
		name string
		c    jsonImpl
	}{{"old", refImpl{r}}, {"new", c}}
}

func benchFrom(b *testing.B, schemas string, s *data.Schema, v any) {
	for _, impl := range newImpls(b, map[string]string{SchemasEnableConfig: schemas}) {
		b.Run(impl.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := impl.c.FromConnect("t", s, v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func benchTo(b *testing.B, schemas string, s *data.Schema, v any) {
	for _, impl := range newImpls(b, map[string]string{SchemasEnableConfig: schemas}) {
		b.Run(impl.name, func(b *testing.B) {
			msg, err := impl.c.FromConnect("t", s, v)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := impl.c.ToConnect("t", msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkJSONFromConnectSyslog(b *testing.B) { benchFrom(b, "false", nil, benchSyslogValue()) }

func BenchmarkJSONToConnectSyslog(b *testing.B) { benchTo(b, "false", nil, benchSyslogValue()) }

func BenchmarkJSONFromConnectCDC(b *testing.B) {
	cdc := newBenchCDC()
	b.Run("insert", func(b *testing.B) { benchFrom(b, "true", cdc.env, cdc.event(123, false)) })
	b.Run("update", func(b *testing.B) { benchFrom(b, "true", cdc.env, cdc.event(123, true)) })
}

func BenchmarkJSONToConnectCDC(b *testing.B) {
	cdc := newBenchCDC()
	b.Run("insert", func(b *testing.B) { benchTo(b, "true", cdc.env, cdc.event(123, false)) })
	b.Run("update", func(b *testing.B) { benchTo(b, "true", cdc.env, cdc.event(123, true)) })
}
