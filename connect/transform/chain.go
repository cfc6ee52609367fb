// Package transform runs Kafka Connect's single message transforms (SMTs)
// and predicates in the host, so connectors in any language get them: a
// Chain is built from a connector's config (transforms=a,b,
// transforms.a.type=<Kafka class>, predicates=..., transforms.a.predicate,
// transforms.a.negate) and applied to each record.
package transform

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sluice-io/sluice/connect/data"
)

// ConfigError is a bad transform or predicate configuration: Kafka's
// ConfigException. Key is the full connector config key when the error is
// about one key, Value what was given for it.
type ConfigError struct {
	Key     string
	Value   string
	Msg     string
	missing bool
}

// Error words the problem as Kafka's ConfigException does, so users see
// the messages they know.
func (e *ConfigError) Error() string {
	switch {
	case e.missing:
		return fmt.Sprintf("Missing required configuration %q which has no default value.", e.Key)
	case e.Key == "":
		return e.Msg
	}
	return fmt.Sprintf("Invalid value %s for configuration %s: %s", e.Value, e.Key, e.Msg)
}

func missingKey(key string) *ConfigError { return &ConfigError{Key: key, missing: true} }

// stageFunc transforms one record in place or returns a replacement; nil
// drops it.
type stageFunc func(r *data.Record) (*data.Record, error)

type predicateFunc func(r *data.Record) bool

type stage struct {
	alias, class string
	apply        stageFunc
	predicate    predicateFunc // nil: always apply
	negate       bool
}

// Chain is a connector's ordered list of transforms. It is safe for
// concurrent use.
type Chain struct {
	stages []stage
}

// Len returns the number of transforms in the chain.
func (c *Chain) Len() int { return len(c.stages) }

// Apply runs r through the chain. The result is a new record (r itself is
// never modified, so the caller can keep it for retries and the dead
// letter queue) or nil when a transform such as Filter dropped it. An
// empty chain returns r unchanged.
func (c *Chain) Apply(r *data.Record) (*data.Record, error) {
	if c == nil || len(c.stages) == 0 || r == nil {
		return r, nil
	}
	out := r.Clone()
	for _, s := range c.stages {
		if s.predicate != nil && s.predicate(out) == s.negate {
			continue
		}
		var err error
		if out, err = s.apply(out); err != nil {
			return nil, fmt.Errorf("transform %s (%s): %w", s.alias, s.class, err)
		}
		if out == nil {
			return nil, nil
		}
	}
	return out, nil
}

// NewChain builds the chain a connector config describes, validating every
// transform and predicate: unknown classes, missing required keys, bad
// values and dangling predicate aliases are ConfigErrors.
func NewChain(config map[string]string) (*Chain, error) {
	predAliases, err := aliasList(config, "predicates")
	if err != nil {
		return nil, err
	}
	preds := make(map[string]predicateFunc, len(predAliases))
	for _, alias := range predAliases {
		if preds[alias], err = buildPredicate(config, alias); err != nil {
			return nil, err
		}
	}
	aliases, err := aliasList(config, "transforms")
	if err != nil {
		return nil, err
	}
	c := &Chain{}
	for _, alias := range aliases {
		st, err := buildStage(config, alias, func(name string) (predicateFunc, bool) {
			p, ok := preds[name]
			return p, ok
		})
		if err != nil {
			return nil, err
		}
		c.stages = append(c.stages, st)
	}
	return c, nil
}

// buildStage builds transform alias; predicate resolves a predicate alias.
func buildStage(config map[string]string, alias string, predicate func(string) (predicateFunc, bool)) (stage, error) {
	prefix := "transforms." + alias + "."
	st := stage{alias: alias}
	class, ok := config[prefix+"type"]
	st.class = strings.TrimSpace(class)
	if !ok || st.class == "" {
		return st, missingKey(prefix + "type")
	}
	p, keySide, ok := lookup(st.class, kindTransformation)
	if !ok {
		return st, &ConfigError{Key: prefix + "type", Value: class, Msg: fmt.Sprintf("Class %s could not be found or is not a transformation.", class)}
	}
	props := withPrefix(config, prefix)
	predAlias, hasPred := props["predicate"]
	negateStr, hasNegate := props["negate"]
	delete(props, "predicate")
	delete(props, "negate")
	delete(props, "type")
	if hasNegate && !hasPred {
		return st, &ConfigError{Msg: fmt.Sprintf("Config '%snegate' was provided but there is no config '%spredicate' defining a predicate to be negated.", prefix, prefix)}
	}
	if hasPred {
		pf, ok := predicate(strings.TrimSpace(predAlias))
		if !ok {
			return st, &ConfigError{Key: prefix + "predicate", Value: predAlias, Msg: "the predicate is not listed in predicates"}
		}
		st.predicate = pf
		if hasNegate {
			b, ok := parseBool(negateStr)
			if !ok {
				return st, &ConfigError{Key: prefix + "negate", Value: negateStr, Msg: "Expected value to be either true or false"}
			}
			st.negate = b
		}
	}
	cfg, err := newConfig(p, props, prefix)
	if err != nil {
		return st, err
	}
	if st.apply, err = p.newStage(cfg, operand(keySide)); err != nil {
		return st, asConfigError(err, prefix)
	}
	return st, nil
}

func buildPredicate(config map[string]string, alias string) (predicateFunc, error) {
	prefix := "predicates." + alias + "."
	class, ok := config[prefix+"type"]
	if !ok || strings.TrimSpace(class) == "" {
		return nil, missingKey(prefix + "type")
	}
	p, _, ok := lookup(strings.TrimSpace(class), kindPredicate)
	if !ok {
		return nil, &ConfigError{Key: prefix + "type", Value: class, Msg: fmt.Sprintf("Class %s could not be found or is not a predicate.", class)}
	}
	props := withPrefix(config, prefix)
	delete(props, "type")
	cfg, err := newConfig(p, props, prefix)
	if err != nil {
		return nil, err
	}
	pf, err := p.newPredicate(cfg)
	if err != nil {
		return nil, asConfigError(err, prefix)
	}
	return pf, nil
}

// aliasList parses a LIST config of aliases, rejecting duplicates as Kafka
// does.
func aliasList(config map[string]string, key string) ([]string, error) {
	aliases := splitList(config[key])
	for i, a := range aliases {
		if a == "" {
			return nil, &ConfigError{Key: key, Value: config[key], Msg: "empty alias"}
		}
		if slices.Contains(aliases[:i], a) {
			return nil, &ConfigError{Key: key, Value: config[key], Msg: "Duplicate alias provided."}
		}
	}
	return aliases, nil
}

func withPrefix(config map[string]string, prefix string) map[string]string {
	out := map[string]string{}
	for k, v := range config {
		if rest, ok := strings.CutPrefix(k, prefix); ok {
			out[rest] = v
		}
	}
	return out
}

func asConfigError(err error, prefix string) error {
	if ce, ok := err.(*ConfigError); ok {
		return ce
	}
	return &ConfigError{Msg: prefix + ": " + err.Error()}
}
