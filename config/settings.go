package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Type is the value type of a setting.
type Type int

// Setting value types.
const (
	TypeInt        Type = iota // 32-bit signed integer
	TypeLong                   // 64-bit signed integer
	TypeBool                   // true or false (any letter case)
	TypeString                 // free text
	TypeList                   // comma-separated list; blanks around items are dropped
	TypeDurationMs             // 64-bit signed integer, a number of milliseconds
	TypeEnum                   // one of a fixed set of words
	TypeDouble                 // a decimal number (Kafka's DOUBLE)
)

var typeNames = [...]string{"int", "long", "bool", "string", "list", "duration-ms", "enum", "double"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("Type(%d)", int(t))
}

// KafkaType returns the DescribeConfigs ConfigType code for t
// (1 BOOLEAN, 2 STRING, 3 INT, 5 LONG, 7 LIST).
func (t Type) KafkaType() int8 {
	switch t {
	case TypeBool:
		return 1
	case TypeInt:
		return 3
	case TypeLong, TypeDurationMs:
		return 5
	case TypeDouble:
		return 6
	case TypeList:
		return 7
	default:
		return 2
	}
}

// Source tells where an effective value came from. The numbers are Kafka's
// DescribeConfigs ConfigSource codes, so they can go on the wire as they are.
type Source int8

// Config sources (Kafka wire values).
const (
	SourceUnknown                    Source = 0
	SourceDynamicTopicConfig         Source = 1 // a per-topic override
	SourceDynamicBrokerConfig        Source = 2 // set at run time for one broker
	SourceDynamicDefaultBrokerConfig Source = 3 // set at run time for every broker
	SourceStaticBrokerConfig         Source = 4 // the properties file or --set
	SourceDefaultConfig              Source = 5 // built-in default
)

func (s Source) String() string {
	switch s {
	case SourceDynamicTopicConfig:
		return "DYNAMIC_TOPIC_CONFIG"
	case SourceDynamicBrokerConfig:
		return "DYNAMIC_BROKER_CONFIG"
	case SourceDynamicDefaultBrokerConfig:
		return "DYNAMIC_DEFAULT_BROKER_CONFIG"
	case SourceStaticBrokerConfig:
		return "STATIC_BROKER_CONFIG"
	case SourceDefaultConfig:
		return "DEFAULT_CONFIG"
	default:
		return "UNKNOWN"
	}
}

// Setting describes one configuration key: its type, default and checks.
type Setting struct {
	Name string
	Type Type
	// Default is the built-in value as text. When Nullable is set and Default
	// is empty the setting has no value unless configured (Kafka's null).
	Default  string
	Nullable bool
	Enum     []string // allowed words for TypeEnum, or allowed items for TypeList
	Min, Max *int64   // inclusive bounds for numeric types
	// Check, when set, runs after the type and bound checks.
	Check     func(v string) error
	ReadOnly  bool // cannot be changed at run time (all but DynamicBrokerSettings)
	Sensitive bool // value must not be shown (passwords); none yet
	Doc       string
}

func atLeast(n int64) *int64 { return &n }

func atMost(n int64) *int64 { return &n }

// validate checks v against the setting's type, bounds, enum and Check. The
// returned error names neither the setting nor the source; callers add those.
func (s *Setting) validate(v string) error {
	if v == "" && s.Nullable {
		return nil
	}
	switch s.Type {
	case TypeInt, TypeLong, TypeDurationMs:
		bits := 64
		if s.Type == TypeInt {
			bits = 32
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, bits)
		if err != nil {
			if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
				return fmt.Errorf("%q is out of range for a %d-bit integer", v, bits)
			}
			return fmt.Errorf("%q is not an integer", v)
		}
		if s.Min != nil && n < *s.Min {
			return fmt.Errorf("%q is below the minimum %d", v, *s.Min)
		}
		if s.Max != nil && n > *s.Max {
			return fmt.Errorf("%q is above the maximum %d", v, *s.Max)
		}
	case TypeBool:
		if _, err := parseBool(v); err != nil {
			return err
		}
	case TypeDouble:
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || math.IsNaN(f) {
			return fmt.Errorf("%q is not a number", v)
		}
		if s.Min != nil && f < float64(*s.Min) {
			return fmt.Errorf("%q is below the minimum %d", v, *s.Min)
		}
		if s.Max != nil && f > float64(*s.Max) {
			return fmt.Errorf("%q is above the maximum %d", v, *s.Max)
		}
	case TypeEnum:
		if !contains(s.Enum, strings.TrimSpace(v)) {
			return fmt.Errorf("%q is not one of %s", v, strings.Join(s.Enum, ", "))
		}
	case TypeList:
		if s.Enum != nil {
			items := splitList(v)
			if len(items) == 0 {
				return fmt.Errorf("%q is empty; expected one or more of %s", v, strings.Join(s.Enum, ", "))
			}
			for _, it := range items {
				if !contains(s.Enum, it) {
					return fmt.Errorf("%q: item %q is not one of %s", v, it, strings.Join(s.Enum, ", "))
				}
			}
		}
	}
	if s.Check != nil {
		return s.Check(v)
	}
	return nil
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (true or false)", v)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// splitList splits a comma-separated list, dropping blanks and empty items.
func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// mustInt parses a value that was already validated.
func mustInt(v string) int64 {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		panic(fmt.Sprintf("config: internal: unvalidated integer %q", v))
	}
	return n
}

// mustFloat parses a double that was already validated.
func mustFloat(v string) float64 {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil {
		panic(fmt.Sprintf("config: internal: unvalidated number %q", v))
	}
	return f
}

// clamp32 narrows n to int32, saturating; used for values bounded by validation.
func clamp32(n int64) int32 {
	if n > math.MaxInt32 {
		return math.MaxInt32
	}
	if n < math.MinInt32 {
		return math.MinInt32
	}
	return int32(n)
}

// suggest returns the known name closest to name, if it is close enough to be
// a likely typo, else "".
func suggest(name string, known []string) string {
	best, bestD := "", 4
	for _, k := range known {
		if d := editDistance(name, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// configError is a rejected setting or value. It matches ErrInvalidConfig
// with errors.Is while keeping its own message.
type configError struct{ msg string }

func (e *configError) Error() string { return e.msg }
func (e *configError) Unwrap() error { return ErrInvalidConfig }

// invalid formats a configError.
func invalid(format string, args ...any) error {
	return &configError{msg: fmt.Sprintf(format, args...)}
}
