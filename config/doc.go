// Package config holds Sluice's broker and topic configuration: a parser for
// Kafka-style .properties files, the table of every known setting with its
// type, default and validation, and the typed views built from it.
//
// A broker's configuration comes from built-in defaults, then a properties
// file, then --set overrides (see Load). Topics inherit the broker's values
// and may override the settings listed by TopicSettings; Broker.TopicConfig
// gives the effective per-topic values and DescribeTopicConfig /
// Broker.Describe answer Kafka's DescribeConfigs.
//
// docs/configuration.md contains a reference generated from the tables here
// (see Reference); a test keeps it current.
package config
