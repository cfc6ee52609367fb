package config

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Dynamic broker settings, as Kafka's: a few broker settings can change
// while the broker runs (AlterConfigs and IncrementalAlterConfigs on a
// BROKER resource). The value set for one broker ("<node.id>") beats the
// cluster-wide default (""), which beats the properties file, which beats
// the built-in default. Every other broker setting is read-only: restart
// with a new properties file to change it.
//
// Only settings whose users read them at every use belong here: the
// replication throttles (each quota.Rate takes a new limit at once).

// dynamicBrokerSettings are the broker settings that may change at run
// time, sorted. Kafka lets both be set per broker and cluster-wide.
var dynamicBrokerSettings = []string{
	"follower.replication.throttled.rate",
	"leader.replication.throttled.rate",
}

// DynamicBrokerSettings returns the names of the broker settings that may
// change at run time, sorted.
func DynamicBrokerSettings() []string { return slices.Clone(dynamicBrokerSettings) }

// IsDynamicBrokerSetting reports whether name may change at run time.
func IsDynamicBrokerSetting(name string) bool {
	_, ok := slices.BinarySearch(dynamicBrokerSettings, name)
	return ok
}

// Why a dynamic broker change is refused. The broker answers every one
// with Kafka's INVALID_REQUEST, as Kafka does for BROKER resources
// (KAFKA-13609 keeps even bad values there).
var (
	// ErrUnknownBrokerSetting is a name that is no broker setting.
	ErrUnknownBrokerSetting = errors.New("unknown broker setting")
	// ErrNotDynamic is a broker setting that cannot change at run time.
	ErrNotDynamic = errors.New("cannot update these configs dynamically")
)

// ValidateDynamicBrokerConfig checks that name may change at run time and
// that value is valid for it.
func ValidateDynamicBrokerConfig(name, value string) error {
	s, ok := settingIndex[name]
	switch {
	case !ok:
		hint := ""
		if g := suggest(name, settingNames()); g != "" {
			hint = fmt.Sprintf("; did you mean %q?", g)
		}
		return fmt.Errorf("%w %q%s", ErrUnknownBrokerSetting, name, hint)
	case !IsDynamicBrokerSetting(name):
		return fmt.Errorf("%w: %s (restart with it in the properties file; the dynamic ones are %s)",
			ErrNotDynamic, name, strings.Join(dynamicBrokerSettings, ", "))
	}
	if err := s.validate(value); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// Dynamic are the dynamic values of one broker: those set for it and
// those set cluster-wide (either may be nil).
type Dynamic struct {
	PerBroker, ClusterDefault map[string]string
}

// Int is the effective value of a dynamic integer setting: the broker's
// own, else the cluster default, else static (the properties file or the
// built-in default). A stored value that does not parse is passed over.
func (d Dynamic) Int(name string, static int64) int64 {
	for _, m := range []map[string]string{d.PerBroker, d.ClusterDefault} {
		if v, ok := m[name]; ok {
			if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
				return n
			}
		}
	}
	return static
}

// DescribeWith lists every broker setting as Describe does, with the
// dynamic values of d in front: a setting set for this broker has source
// DYNAMIC_BROKER_CONFIG, one set cluster-wide DYNAMIC_DEFAULT_BROKER_CONFIG.
// Synonyms list every place a value is set, most important first, as
// Kafka's DescribeConfigs does.
func (b *Broker) DescribeWith(d Dynamic) []Entry {
	out := b.Describe()
	for i := range out {
		e := &out[i]
		if e.Sensitive {
			continue
		}
		var syn []Synonym
		if v, ok := d.PerBroker[e.Name]; ok {
			syn = append(syn, Synonym{Name: e.Name, Value: v, Source: SourceDynamicBrokerConfig})
		}
		if v, ok := d.ClusterDefault[e.Name]; ok {
			syn = append(syn, Synonym{Name: e.Name, Value: v, Source: SourceDynamicDefaultBrokerConfig})
		}
		if len(syn) > 0 {
			e.Value, e.Null, e.Source = syn[0].Value, false, syn[0].Source
		}
		e.Synonyms = append(syn, e.Synonyms...)
	}
	return out
}

// DescribeClusterDefaults lists the settings set cluster-wide, which is
// what Kafka answers for the BROKER resource "": only those, with source
// DYNAMIC_DEFAULT_BROKER_CONFIG and the static values as synonyms.
func (b *Broker) DescribeClusterDefaults(defaults map[string]string) []Entry {
	var out []Entry
	for _, e := range b.DescribeWith(Dynamic{ClusterDefault: defaults}) {
		if e.Source == SourceDynamicDefaultBrokerConfig {
			out = append(out, e)
		}
	}
	return out
}
