package pgjdbc

import (
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sluice-io/sluice/connect/data"
)

// Debezium's logical types (io.debezium.time.*, io.debezium.data.*), as
// the PostgreSQL CDC source writes them: the column type each maps to, so
// CDC → PostgreSQL replication recreates the source's types, and the
// conversion of its values (days, millis, micros, nanos, ISO text, the
// variable-scale decimal struct) to what pgx encodes for that type.
var debeziumTypes = map[string]string{
	"io.debezium.time.Date":                 "date",
	"io.debezium.time.Timestamp":            "timestamp",
	"io.debezium.time.MicroTimestamp":       "timestamp",
	"io.debezium.time.NanoTimestamp":        "timestamp",
	"io.debezium.time.ZonedTimestamp":       "timestamptz",
	"io.debezium.time.Time":                 "time",
	"io.debezium.time.MicroTime":            "time",
	"io.debezium.time.NanoTime":             "time",
	"io.debezium.time.ZonedTime":            "timetz",
	"io.debezium.time.MicroDuration":        "interval",
	"io.debezium.data.Json":                 "jsonb",
	"io.debezium.data.Uuid":                 "uuid",
	"io.debezium.data.Xml":                  "xml",
	"io.debezium.data.Enum":                 "text",
	"io.debezium.data.VariableScaleDecimal": "numeric",
}

// debeziumToPG converts a value of a Debezium logical type; ok is false
// for other schemas.
func debeziumToPG(s *data.Schema, v any) (out any, ok bool, err error) {
	if s == nil {
		return nil, false, nil
	}
	switch s.Name {
	case "io.debezium.time.Date":
		days, ok := v.(int32)
		if !ok {
			return nil, true, fmt.Errorf("%T is not a Debezium Date (int32 days)", v)
		}
		return data.DateFromDays(days), true, nil
	case "io.debezium.time.Timestamp", "io.debezium.time.MicroTimestamp", "io.debezium.time.NanoTimestamp":
		n, ok := v.(int64)
		if !ok {
			return nil, true, fmt.Errorf("%T is not a Debezium timestamp (int64)", v)
		}
		switch s.Name {
		case "io.debezium.time.Timestamp":
			return time.UnixMilli(n).UTC(), true, nil
		case "io.debezium.time.MicroTimestamp":
			return time.UnixMicro(n).UTC(), true, nil
		}
		return time.Unix(0, n).UTC(), true, nil
	case "io.debezium.time.ZonedTimestamp":
		str, ok := v.(string)
		if !ok {
			return nil, true, fmt.Errorf("%T is not a Debezium ZonedTimestamp (ISO text)", v)
		}
		t, err := time.Parse(time.RFC3339Nano, str)
		return t, true, err
	case "io.debezium.time.Time", "io.debezium.time.MicroTime", "io.debezium.time.NanoTime":
		var us int64
		switch n := v.(type) {
		case int32: // Time: millis
			us = int64(n) * 1000
		case int64:
			us = n
			if s.Name == "io.debezium.time.NanoTime" {
				us = n / 1000
			}
		default:
			return nil, true, fmt.Errorf("%T is not a Debezium time of day", v)
		}
		return pgtype.Time{Microseconds: us, Valid: true}, true, nil
	case "io.debezium.time.MicroDuration":
		n, ok := v.(int64)
		if !ok {
			return nil, true, fmt.Errorf("%T is not a Debezium MicroDuration (int64)", v)
		}
		return pgtype.Interval{Microseconds: n, Valid: true}, true, nil
	case "io.debezium.data.VariableScaleDecimal":
		st, ok := v.(*data.Struct)
		if !ok {
			return nil, true, fmt.Errorf("%T is not a Debezium VariableScaleDecimal", v)
		}
		scale, _ := st.Get("scale").(int32)
		b, _ := st.Get("value").([]byte)
		d, err := data.DecimalFromBytes(data.DecimalSchema(int(scale)), b)
		if err != nil {
			return nil, true, err
		}
		return pgtype.Numeric{Int: d.Unscaled, Exp: -d.Scale, Valid: true}, true, nil
	}
	return nil, false, nil
}
