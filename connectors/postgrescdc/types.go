package main

import (
	"encoding/hex"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-io/sluice/connect/data"
)

// PostgreSQL type OIDs the connector maps to Connect types; any other
// type is carried as its text.
const (
	oidBool        = 16
	oidBytea       = 17
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidOID         = 26
	oidJSON        = 114
	oidXML         = 142
	oidFloat4      = 700
	oidFloat8      = 701
	oidDate        = 1082
	oidTime        = 1083
	oidTimestamp   = 1114
	oidTimestamptz = 1184
	oidInterval    = 1186
	oidTimetz      = 1266
	oidNumeric     = 1700
	oidUUID        = 2950
	oidJSONB       = 3802
	oidBoolArr     = 1000
	oidInt2Arr     = 1005
	oidInt4Arr     = 1007
	oidInt8Arr     = 1016
	oidTextArr     = 1009
	oidVarcharArr  = 1015
	oidFloat8Arr   = 1022
)

// unavailable is Debezium's placeholder for a TOASTed column that an
// update left unchanged (pgoutput sends no value for it).
const unavailable = "__debezium_unavailable_value"

// colType is how one column's text value becomes a Connect value.
type colType struct {
	schema *data.Schema // required variant; columns make it optional as needed
	decode func(string) (any, error)
	// toast is the value written for an unchanged TOASTed column, nil
	// when the type has no placeholder (the field is then null).
	toast any
}

func named(t data.Type, name string) *data.Schema {
	return &data.Schema{Type: t, Name: name, Version: 1}
}

// typeFor maps a column type (base type OID and type modifier) as
// Debezium's defaults do: time.precision.mode=adaptive,
// binary.handling.mode=bytes and the configured decimal.handling.mode.
func typeFor(oid uint32, typmod int32, decimalMode string) colType {
	asString := colType{schema: data.StringSchema, decode: func(s string) (any, error) { return s, nil }, toast: unavailable}
	switch oid {
	case oidBool:
		return colType{schema: data.BooleanSchema, decode: func(s string) (any, error) { return s == "t", nil }}
	case oidInt2:
		return colType{schema: data.Int16Schema, decode: func(s string) (any, error) {
			n, err := strconv.ParseInt(s, 10, 16)
			return int16(n), err
		}}
	case oidInt4:
		return colType{schema: data.Int32Schema, decode: func(s string) (any, error) {
			n, err := strconv.ParseInt(s, 10, 32)
			return int32(n), err
		}}
	case oidInt8, oidOID:
		return colType{schema: data.Int64Schema, decode: func(s string) (any, error) { return strconv.ParseInt(s, 10, 64) }}
	case oidFloat4:
		return colType{schema: data.Float32Schema, decode: func(s string) (any, error) {
			f, err := parseFloat(s, 32)
			return float32(f), err
		}}
	case oidFloat8:
		return colType{schema: data.Float64Schema, decode: func(s string) (any, error) { return parseFloat(s, 64) }}
	case oidNumeric:
		return numericType(typmod, decimalMode)
	case oidBytea:
		return colType{schema: data.BytesSchema, decode: decodeBytea, toast: []byte(unavailable)}
	case oidJSON, oidJSONB:
		t := asString
		t.schema = named(data.TypeString, "io.debezium.data.Json")
		return t
	case oidXML:
		t := asString
		t.schema = named(data.TypeString, "io.debezium.data.Xml")
		return t
	case oidUUID:
		t := asString
		t.schema = named(data.TypeString, "io.debezium.data.Uuid")
		return t
	case oidDate:
		return colType{schema: named(data.TypeInt32, "io.debezium.time.Date"), decode: decodeDate}
	case oidTimestamp:
		if typmod >= 0 && typmod <= 3 {
			return colType{schema: named(data.TypeInt64, "io.debezium.time.Timestamp"), decode: func(s string) (any, error) {
				us, err := decodeTimestampMicros(s)
				return floorDiv(us, 1000), err
			}}
		}
		return colType{schema: named(data.TypeInt64, "io.debezium.time.MicroTimestamp"), decode: func(s string) (any, error) { return decodeTimestampMicros(s) }}
	case oidTimestamptz:
		return colType{schema: named(data.TypeString, "io.debezium.time.ZonedTimestamp"), decode: decodeTimestamptz}
	case oidTime:
		if typmod >= 0 && typmod <= 3 {
			return colType{schema: named(data.TypeInt32, "io.debezium.time.Time"), decode: func(s string) (any, error) {
				us, err := decodeTimeMicros(s)
				return int32(us / 1000), err
			}}
		}
		return colType{schema: named(data.TypeInt64, "io.debezium.time.MicroTime"), decode: func(s string) (any, error) { return decodeTimeMicros(s) }}
	case oidTimetz:
		return colType{schema: named(data.TypeString, "io.debezium.time.ZonedTime"), decode: decodeTimetz}
	case oidInterval:
		return colType{schema: named(data.TypeInt64, "io.debezium.time.MicroDuration"), decode: decodeInterval}
	case oidBoolArr, oidInt2Arr, oidInt4Arr, oidInt8Arr, oidTextArr, oidVarcharArr, oidFloat8Arr:
		return arrayType(oid, decimalMode)
	}
	return asString
}

func parseFloat(s string, bits int) (float64, error) {
	switch s {
	case "NaN":
		return math.NaN(), nil
	case "Infinity":
		return math.Inf(1), nil
	case "-Infinity":
		return math.Inf(-1), nil
	}
	return strconv.ParseFloat(s, bits)
}

// numericType: precise is Connect's Decimal for numeric(p,s) and
// Debezium's VariableScaleDecimal for an unconstrained numeric.
func numericType(typmod int32, mode string) colType {
	switch mode {
	case "double":
		return colType{schema: data.Float64Schema, decode: func(s string) (any, error) { return parseFloat(s, 64) }}
	case "string":
		return colType{schema: data.StringSchema, decode: func(s string) (any, error) { return s, nil }}
	}
	if typmod >= 4 {
		scale := int((typmod - 4) & 0xffff)
		precision := int((typmod - 4) >> 16)
		s := data.DecimalSchema(scale)
		s.Parameters["connect.decimal.precision"] = strconv.Itoa(precision)
		return colType{schema: s, decode: func(v string) (any, error) {
			if v == "NaN" || strings.HasSuffix(v, "Infinity") {
				return nil, nil // no Decimal for these; Debezium writes null too
			}
			d, err := data.ParseDecimal(v)
			if err != nil {
				return nil, err
			}
			return rescale(d, int32(scale)), nil
		}}
	}
	vs := data.StructOf("io.debezium.data.VariableScaleDecimal",
		data.F("scale", data.Int32Schema), data.F("value", data.BytesSchema))
	vs.Doc = "Variable scaled decimal"
	vs.Version = 1
	return colType{schema: vs, decode: func(v string) (any, error) {
		if v == "NaN" || strings.HasSuffix(v, "Infinity") {
			return nil, nil
		}
		d, err := data.ParseDecimal(v)
		if err != nil {
			return nil, err
		}
		if d.Scale < 0 {
			d = rescale(d, 0)
		}
		b, err := data.DecimalToBytes(data.DecimalSchema(int(d.Scale)), d)
		if err != nil {
			return nil, err
		}
		return data.NewStruct(vs).MustPut("scale", d.Scale).MustPut("value", b), nil
	}}
}

// rescale gives d the scale s when it has fewer fraction digits.
func rescale(d data.Decimal, s int32) data.Decimal {
	if d.Scale >= s {
		return d
	}
	mul := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(s-d.Scale)), nil)
	return data.Decimal{Unscaled: new(big.Int).Mul(d.Unscaled, mul), Scale: s}
}

func decodeBytea(s string) (any, error) {
	if strings.HasPrefix(s, `\x`) {
		return hex.DecodeString(s[2:])
	}
	return nil, fmt.Errorf("bytea %.20q: want the hex format", s)
}

const (
	usPerDay  = int64(86_400_000_000)
	dateTime  = "2006-01-02 15:04:05.999999999"
	dateOnly  = "2006-01-02"
	farFuture = int64(math.MaxInt64)
)

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func decodeDate(s string) (any, error) {
	switch s {
	case "infinity":
		return int32(math.MaxInt32), nil
	case "-infinity":
		return int32(math.MinInt32), nil
	}
	t, err := time.Parse(dateOnly, s)
	if err != nil {
		return nil, err
	}
	return int32(floorDiv(t.Unix(), 86400)), nil
}

func decodeTimestampMicros(s string) (int64, error) {
	switch s {
	case "infinity":
		return farFuture, nil
	case "-infinity":
		return math.MinInt64, nil
	}
	t, err := time.Parse(dateTime, s)
	if err != nil {
		return 0, err
	}
	return t.UnixMicro(), nil
}

// decodeTimestamptz renders the instant in UTC as Debezium's
// ZonedTimestamp does (ISO 8601, fraction without trailing zeros).
func decodeTimestamptz(s string) (any, error) {
	switch s {
	case "infinity", "-infinity":
		return s, nil
	}
	for _, layout := range []string{dateTime + "-07", dateTime + "-07:00", dateTime + "-07:00:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC().Format("2006-01-02T15:04:05.999999999Z07:00"), nil
		}
	}
	return nil, fmt.Errorf("timestamptz %q: not in ISO style", s)
}

func decodeTimeMicros(s string) (int64, error) {
	if s == "24:00:00" {
		return usPerDay, nil
	}
	t, err := time.Parse("15:04:05.999999999", s)
	if err != nil {
		return 0, err
	}
	return int64(t.Hour())*3_600_000_000 + int64(t.Minute())*60_000_000 + int64(t.Second())*1_000_000 + int64(t.Nanosecond()/1000), nil
}

func decodeTimetz(s string) (any, error) {
	for _, layout := range []string{"15:04:05.999999999-07", "15:04:05.999999999-07:00", "15:04:05.999999999-07:00:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC().Format("15:04:05.999999999Z"), nil
		}
	}
	return nil, fmt.Errorf("timetz %q: unexpected format", s)
}

// decodeInterval reads IntervalStyle iso_8601 ("P1Y2M3DT4H5M6.5S") into
// microseconds with Debezium's average month (365.25/12 days).
func decodeInterval(s string) (any, error) {
	if !strings.HasPrefix(s, "P") {
		return nil, fmt.Errorf("interval %q: want ISO 8601", s)
	}
	var us float64
	inTime := false
	num := ""
	for _, r := range s[1:] {
		switch {
		case r == 'T':
			inTime = true
		case r == '-' || r == '.' || (r >= '0' && r <= '9'):
			num += string(r)
		default:
			v, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return nil, fmt.Errorf("interval %q: %w", s, err)
			}
			num = ""
			day := float64(usPerDay)
			switch {
			case r == 'Y':
				us += v * 365.25 * day
			case r == 'M' && !inTime:
				us += v * 365.25 / 12 * day
			case r == 'W':
				us += v * 7 * day
			case r == 'D':
				us += v * day
			case r == 'H':
				us += v * 3_600_000_000
			case r == 'M':
				us += v * 60_000_000
			case r == 'S':
				us += v * 1_000_000
			default:
				return nil, fmt.Errorf("interval %q: unexpected %q", s, r)
			}
		}
	}
	return int64(math.Round(us)), nil
}

// arrayType maps one-dimensional arrays of simple element types to
// Connect arrays, as Debezium does.
func arrayType(oid uint32, decimalMode string) colType {
	elemOID := map[uint32]uint32{oidBoolArr: oidBool, oidInt2Arr: oidInt2, oidInt4Arr: oidInt4, oidInt8Arr: oidInt8,
		oidTextArr: 25, oidVarcharArr: 1043, oidFloat8Arr: oidFloat8}[oid]
	elem := typeFor(elemOID, -1, decimalMode)
	es := elem.schema.AsOptional()
	var toast any
	if elem.schema.Type == data.TypeString {
		toast = []any{unavailable}
	}
	return colType{schema: data.ArrayOf(es), toast: toast, decode: func(s string) (any, error) {
		items, err := parseArray(s)
		if err != nil {
			return nil, err
		}
		out := make([]any, len(items))
		for i, it := range items {
			if it == nil {
				continue
			}
			if out[i], err = elem.decode(*it); err != nil {
				return nil, err
			}
		}
		return out, nil
	}}
}

// parseArray splits PostgreSQL's text form of a one-dimensional array
// ({a,"b c",NULL}) into elements; nil is NULL.
func parseArray(s string) ([]*string, error) {
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return nil, fmt.Errorf("array %.30q: want {...}", s)
	}
	body := s[1 : len(s)-1]
	var out []*string
	if body == "" {
		return out, nil
	}
	for i := 0; i <= len(body); {
		var b strings.Builder
		quoted := false
		if i < len(body) && body[i] == '"' {
			quoted = true
			i++
			for i < len(body) && body[i] != '"' {
				if body[i] == '\\' && i+1 < len(body) {
					i++
				}
				b.WriteByte(body[i])
				i++
			}
			i++ // closing quote
		} else {
			for i < len(body) && body[i] != ',' {
				if body[i] == '{' {
					return nil, fmt.Errorf("array %.30q: multi-dimensional arrays are not supported", s)
				}
				b.WriteByte(body[i])
				i++
			}
		}
		v := b.String()
		if !quoted && v == "NULL" {
			out = append(out, nil)
		} else {
			out = append(out, &v)
		}
		i++ // the comma
	}
	return out, nil
}
