package config

import "errors"

// ErrInvalidConfig marks a rejected topic setting or value; the broker maps
// it to Kafka's INVALID_CONFIG.
var ErrInvalidConfig = errors.New("invalid config")

// IsListTopicConfig reports whether a topic setting holds a list, the only
// kind IncrementalAlterConfigs may APPEND to or SUBTRACT from.
func IsListTopicConfig(name string) bool {
	s, ok := topicIndex[name]
	return ok && s.Type == TypeList
}
