package data

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// Logical type names and parameters, as Kafka's.
const (
	DecimalName       = "org.apache.kafka.connect.data.Decimal"
	DecimalScaleParam = "scale"
	DateName          = "org.apache.kafka.connect.data.Date"
	TimeName          = "org.apache.kafka.connect.data.Time"
	TimestampName     = "org.apache.kafka.connect.data.Timestamp"
)

// The logical schemas for dates and times (Date and Time are int32 days
// and millis of day, Timestamp is int64 epoch millis). Do not modify them;
// use AsOptional for the optional variants.
var (
	DateSchema      = &Schema{Type: TypeInt32, Name: DateName, Version: 1}
	TimeSchema      = &Schema{Type: TypeInt32, Name: TimeName, Version: 1}
	TimestampSchema = &Schema{Type: TypeInt64, Name: TimestampName, Version: 1}
)

// DecimalSchema returns a required Decimal schema with the given scale.
func DecimalSchema(scale int) *Schema {
	return &Schema{Type: TypeBytes, Name: DecimalName, Version: 1,
		Parameters: map[string]string{DecimalScaleParam: strconv.Itoa(scale)}}
}

// Decimal is an arbitrary-precision decimal Unscaled × 10^-Scale, Java's
// BigDecimal: the value of a Decimal schema.
type Decimal struct {
	Unscaled *big.Int
	Scale    int32
}

// NewDecimal returns unscaled × 10^-scale.
func NewDecimal(unscaled int64, scale int32) Decimal {
	return Decimal{Unscaled: big.NewInt(unscaled), Scale: scale}
}

// ParseDecimal parses a plain decimal ("-12.345") or one with an exponent
// ("1.2E+3"), keeping the scale as written, as BigDecimal(String) does.
func ParseDecimal(s string) (Decimal, error) {
	orig := s
	exp := 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e, err := strconv.Atoi(strings.TrimPrefix(s[i+1:], "+"))
		if err != nil {
			return Decimal{}, fmt.Errorf("data: invalid decimal %q", orig)
		}
		exp, s = e, s[:i]
	}
	scale := 0
	if i := strings.IndexByte(s, '.'); i >= 0 {
		scale = len(s) - i - 1
		s = s[:i] + s[i+1:]
	}
	u, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return Decimal{}, fmt.Errorf("data: invalid decimal %q", orig)
	}
	return Decimal{Unscaled: u, Scale: int32(scale - exp)}, nil
}

func (d Decimal) unscaled() *big.Int {
	if d.Unscaled == nil {
		return new(big.Int)
	}
	return d.Unscaled
}

// Clone returns a copy that shares no memory with d.
func (d Decimal) Clone() Decimal {
	return Decimal{Unscaled: new(big.Int).Set(d.unscaled()), Scale: d.Scale}
}

// Rat returns d as an exact rational.
func (d Decimal) Rat() *big.Rat {
	r := new(big.Rat).SetInt(d.unscaled())
	p := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(abs(d.Scale))), nil)
	if d.Scale >= 0 {
		return r.Quo(r, new(big.Rat).SetInt(p))
	}
	return r.Mul(r, new(big.Rat).SetInt(p))
}

func abs(x int32) int32 {
	if x < 0 {
		return -x
	}
	return x
}

// PlainString renders d in plain notation with exactly Scale fraction
// digits (BigDecimal.toPlainString).
func (d Decimal) PlainString() string {
	u := d.unscaled()
	neg := u.Sign() < 0
	digits := new(big.Int).Abs(u).String()
	if d.Scale <= 0 {
		if u.Sign() != 0 {
			digits += strings.Repeat("0", int(-d.Scale))
		}
		if neg {
			return "-" + digits
		}
		return digits
	}
	sc := int(d.Scale)
	if len(digits) <= sc {
		digits = strings.Repeat("0", sc-len(digits)+1) + digits
	}
	s := digits[:len(digits)-sc] + "." + digits[len(digits)-sc:]
	if neg {
		s = "-" + s
	}
	return s
}

// Float64 returns the nearest float64 to d.
func (d Decimal) Float64() float64 {
	f, _ := d.Rat().Float64()
	return f
}

// DecimalScale returns the scale parameter of a Decimal schema.
func DecimalScale(s *Schema) (int32, error) {
	v, ok := s.Parameters[DecimalScaleParam]
	if !ok {
		return 0, dataErrorf("invalid Decimal schema: scale parameter not found")
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0, dataErrorf("invalid scale parameter found in Decimal schema: %q", v)
	}
	return int32(n), nil
}

// DecimalToBytes encodes d as Kafka's Decimal.fromLogical: the unscaled
// value as big-endian two's complement; d's scale must be the schema's.
func DecimalToBytes(s *Schema, d Decimal) ([]byte, error) {
	scale, err := DecimalScale(s)
	if err != nil {
		return nil, err
	}
	if d.Scale != scale {
		return nil, dataErrorf("decimal value has mismatching scale for given Decimal schema: schema has scale %d, value has scale %d", scale, d.Scale)
	}
	return twosComplement(d.unscaled()), nil
}

// DecimalFromBytes decodes Kafka's Decimal bytes with the schema's scale.
func DecimalFromBytes(s *Schema, b []byte) (Decimal, error) {
	scale, err := DecimalScale(s)
	if err != nil {
		return Decimal{}, err
	}
	return Decimal{Unscaled: fromTwosComplement(b), Scale: scale}, nil
}

// twosComplement is Java's BigInteger.toByteArray: minimal big-endian two's
// complement, at least one byte.
func twosComplement(x *big.Int) []byte {
	if x.Sign() >= 0 {
		b := x.Bytes()
		if len(b) == 0 || b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return b
	}
	// -x-1 has the complemented bits of x.
	m := new(big.Int).Neg(x)
	m.Sub(m, big.NewInt(1))
	b := m.Bytes()
	if len(b) == 0 || b[0]&0x80 != 0 {
		b = append([]byte{0}, b...)
	}
	for i := range b {
		b[i] = ^b[i]
	}
	return b
}

func fromTwosComplement(b []byte) *big.Int {
	x := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		x.Sub(x, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return x
}

const millisPerDay = 24 * 60 * 60 * 1000

// DateToDays encodes a Date value: days since the epoch; the time of day
// in UTC must be zero.
func DateToDays(t time.Time) (int32, error) {
	ms := t.UnixMilli()
	if ms%millisPerDay != 0 {
		return 0, dataErrorf("Kafka Connect Date type should not have any time fields set to non-zero values")
	}
	return int32(ms / millisPerDay), nil
}

// DateFromDays decodes a Date value.
func DateFromDays(days int32) time.Time {
	return time.UnixMilli(int64(days) * millisPerDay).UTC()
}

// TimeToMillis encodes a Time value: millis since midnight on 1970-01-01
// UTC; the date part must be the epoch.
func TimeToMillis(t time.Time) (int32, error) {
	ms := t.UnixMilli()
	if ms < 0 || ms > millisPerDay {
		return 0, dataErrorf("Kafka Connect Time type should not have any date fields set to non-zero values")
	}
	return int32(ms), nil
}

// TimeFromMillis decodes a Time value.
func TimeFromMillis(ms int32) (time.Time, error) {
	if ms < 0 || ms > millisPerDay {
		return time.Time{}, dataErrorf("time values must use number of milliseconds greater than 0 and less than 86400000")
	}
	return time.UnixMilli(int64(ms)).UTC(), nil
}

// TimestampToMillis encodes a Timestamp value: epoch millis.
func TimestampToMillis(t time.Time) int64 { return t.UnixMilli() }

// TimestampFromMillis decodes a Timestamp value.
func TimestampFromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// String formats d as Java's BigDecimal.toString: plain when the scale is
// non-negative and the adjusted exponent is at least -6, else scientific
// with a signed exponent (1.5E+2).
func (d Decimal) String() string {
	u := d.Unscaled
	if u == nil {
		u = new(big.Int)
	}
	digits := new(big.Int).Abs(u).String()
	adjusted := -int64(d.Scale) + int64(len(digits)-1)
	if d.Scale >= 0 && adjusted >= -6 {
		return d.PlainString()
	}
	s := digits[:1]
	if len(digits) > 1 {
		s += "." + digits[1:]
	}
	if adjusted != 0 {
		s += "E"
		if adjusted > 0 {
			s += "+"
		}
		s += strconv.FormatInt(adjusted, 10)
	}
	if u.Sign() < 0 {
		s = "-" + s
	}
	return s
}
