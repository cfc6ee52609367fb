package main

import (
	"fmt"
	"math"
	"math/big"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sluice-io/sluice/connect/data"
)

// numericMapping is Confluent's numeric.mapping: how numeric(p,s)
// columns map to Connect types instead of Decimal.
type numericMapping int

const (
	numericNone          numericMapping = iota // Decimal (pgjdbc's mapping)
	numericPrecisionOnly                       // integers by precision when the scale is 0
	numericBestFit                             // and float64 when the scale is positive and p < 19
	numericBestFitEager                        // and float64 whenever the scale is positive
)

func parseNumericMapping(s string) (numericMapping, bool) {
	switch s {
	case "", "none":
		return numericNone, true
	case "precision_only":
		return numericPrecisionOnly, true
	case "best_fit":
		return numericBestFit, true
	case "best_fit_eager_double":
		return numericBestFitEager, true
	}
	return 0, false
}

// numericSchema is the schema numeric.mapping gives a numeric column of
// type modifier typmod, or nil to keep pgjdbc's (Decimal, or string for
// a numeric without precision and scale).
func numericSchema(m numericMapping, typmod int32, optional bool) *data.Schema {
	if m == numericNone || typmod < 4 {
		return nil
	}
	p, s := (typmod-4)>>16, (typmod-4)&0xffff
	var t data.Type
	switch {
	case s == 0 && p < 19:
		switch {
		case p > 9:
			t = data.TypeInt64
		case p > 4:
			t = data.TypeInt32
		case p > 2:
			t = data.TypeInt16
		default:
			t = data.TypeInt8
		}
	case s > 0 && (m == numericBestFitEager || m == numericBestFit && p < 19):
		t = data.TypeFloat64
	default:
		return nil
	}
	return data.PrimitiveSchema(t, optional)
}

// numericValue converts a numeric value for a schema numericSchema gave.
func numericValue(s *data.Schema, v any) (any, error) {
	n, ok := v.(pgtype.Numeric)
	if !ok || !n.Valid {
		return nil, fmt.Errorf("%v (%T) is not a numeric", v, v)
	}
	if s.Type == data.TypeFloat64 {
		f, err := n.Float64Value()
		if err != nil {
			return nil, err
		}
		return f.Float64, nil
	}
	if n.NaN || n.InfinityModifier != pgtype.Finite {
		return nil, fmt.Errorf("numeric %v does not fit %s", v, s.Type)
	}
	i := new(big.Int).Set(n.Int)
	for e := n.Exp; e > 0; e-- {
		i.Mul(i, big.NewInt(10))
	}
	for e := n.Exp; e < 0; e++ {
		i.Quo(i, big.NewInt(10))
	}
	if !i.IsInt64() {
		return nil, fmt.Errorf("numeric %s does not fit %s", i, s.Type)
	}
	x := i.Int64()
	switch s.Type {
	case data.TypeInt8:
		if x >= math.MinInt8 && x <= math.MaxInt8 {
			return int8(x), nil
		}
	case data.TypeInt16:
		if x >= math.MinInt16 && x <= math.MaxInt16 {
			return int16(x), nil
		}
	case data.TypeInt32:
		if x >= math.MinInt32 && x <= math.MaxInt32 {
			return int32(x), nil
		}
	case data.TypeInt64:
		return x, nil
	}
	return nil, fmt.Errorf("numeric %d does not fit %s", x, s.Type)
}
