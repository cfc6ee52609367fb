package config

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestTopicConfigDefaults(t *testing.T) {
	b, err := Load("", []string{"log.segment.bytes=2048", "log.retention.minutes=10", "log.message.timestamp.type=LogAppendTime"})
	if err != nil {
		t.Fatal(err)
	}
	tc, err := b.TopicConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Topic{
		SegmentBytes: 2048, SegmentMs: 168 * 3_600_000, SegmentJitterMs: 0, SegmentIndexBytes: 10485760,
		IndexIntervalBytes: 4096, RetentionMs: 600_000, RetentionBytes: -1,
		FlushMessages: math.MaxInt64, FlushMs: math.MaxInt64, FileDeleteDelayMs: 60000,
		MaxMessageBytes: 1048588, LogAppendTime: true, CompressionType: "producer",
		MessageTimestampDifferenceMaxMs: math.MaxInt64, CleanupPolicy: "delete",
		DeleteRetentionMs: 86400000, MinCompactionLagMs: 0, MaxCompactionLagMs: math.MaxInt64, MinCleanableDirtyRatio: 0.5,
		MinInsyncReplicas: 1,
	}
	if tc != want {
		t.Errorf("got  %+v\nwant %+v", tc, want)
	}
}

func TestTopicOverrides(t *testing.T) {
	b := Defaults()
	tc, err := b.TopicConfig(map[string]string{
		"segment.bytes": "1000", "segment.ms": "60000", "retention.ms": "-1", "retention.bytes": "5000",
		"flush.messages": "1", "flush.ms": "100", "max.message.bytes": "200",
		"message.timestamp.type": "LogAppendTime", "cleanup.policy": "delete, compact",
		"min.insync.replicas": "2", "index.interval.bytes": "128", "unclean.leader.election.enable": "true",
		"compression.type": "zstd", "preallocate": "TRUE",
	})
	if err != nil {
		t.Fatal(err)
	}
	if tc.SegmentBytes != 1000 || tc.SegmentMs != 60000 || tc.RetentionMs != -1 || tc.RetentionBytes != 5000 ||
		tc.FlushMessages != 1 || tc.FlushMs != 100 || tc.MaxMessageBytes != 200 || !tc.LogAppendTime ||
		tc.CleanupPolicy != "compact,delete" || tc.MinInsyncReplicas != 2 || tc.IndexIntervalBytes != 128 ||
		!tc.UncleanLeaderElection || tc.CompressionType != "zstd" || !tc.Preallocate {
		t.Errorf("overrides not applied: %+v", tc)
	}
}

func TestValidateTopicConfig(t *testing.T) {
	tests := []struct {
		name, value string
		want        string // "" = valid
	}{
		{"retention.ms", "-1", ""},
		{"retention.ms", "-2", `retention.ms: "-2" is below the minimum -1`},
		{"retention.ms", "soon", `retention.ms: "soon" is not an integer`},
		{"segment.bytes", "13", `segment.bytes: "13" is below the minimum 14`},
		{"segment.bytes", "4294967296", `segment.bytes: "4294967296" is out of range`},
		{"cleanup.policy", "compact,delete", ""},
		{"cleanup.policy", "compact", ""},
		{"cleanup.policy", "", `cleanup.policy: "" is empty`},
		{"cleanup.policy", "archive", `item "archive"`},
		{"compression.type", "lz4", ""},
		{"compression.type", "brotli", `compression.type: "brotli" is not one of`},
		{"message.timestamp.type", "LogAppendTime", ""},
		{"message.timestamp.type", "Now", `message.timestamp.type: "Now"`},
		{"min.insync.replicas", "0", `min.insync.replicas: "0" is below the minimum 1`},
		{"unclean.leader.election.enable", "maybe", `"maybe" is not a boolean`},
		{"flush.messages", "0", `flush.messages: "0" is below the minimum 1`},
		{"retention.hours", "1", `unknown topic setting "retention.hours"`},
		{"retention.mss", "1", `did you mean "retention.ms"`},
		{"min.cleanable.dirty.ratio", "0.1", ""},
		{"min.cleanable.dirty.ratio", "1", ""},
		{"min.cleanable.dirty.ratio", "1.5", `min.cleanable.dirty.ratio: "1.5" is above the maximum 1`},
		{"min.cleanable.dirty.ratio", "-0.1", `min.cleanable.dirty.ratio: "-0.1" is below the minimum 0`},
		{"min.cleanable.dirty.ratio", "half", `min.cleanable.dirty.ratio: "half" is not a number`},
		{"min.cleanable.dirty.ratio", "NaN", `is not a number`},
	}
	for _, tc := range tests {
		err := ValidateTopicConfig(tc.name, tc.value)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s=%q: unexpected error %v", tc.name, tc.value, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s=%q: error %v, want %q", tc.name, tc.value, err, tc.want)
		}
	}
	if _, err := Defaults().TopicConfig(map[string]string{"segment.bytes": "x"}); err == nil ||
		!strings.Contains(err.Error(), `segment.bytes: "x"`) {
		t.Errorf("TopicConfig with bad value: %v", err)
	}
	if !IsTopicConfig("retention.ms") || IsTopicConfig("log.retention.ms") {
		t.Error("IsTopicConfig")
	}
}

func TestDescribeTopicConfig(t *testing.T) {
	b, err := Load("", []string{"log.retention.minutes=5", "log.segment.bytes=4096"})
	if err != nil {
		t.Fatal(err)
	}
	entries := b.DescribeTopicConfig(map[string]string{"max.message.bytes": "999"})
	if len(entries) != len(TopicSettings()) {
		t.Fatalf("%d entries", len(entries))
	}
	byName := map[string]TopicEntry{}
	for _, e := range entries {
		byName[e.Name] = e
		if e.ReadOnly || e.Sensitive {
			t.Errorf("%s: topic settings are writable and not sensitive", e.Name)
		}
	}
	tests := []struct {
		name, value string
		src         Source
		synonyms    []string
	}{
		{"max.message.bytes", "999", SourceDynamicTopicConfig, []string{"max.message.bytes", "message.max.bytes"}},
		{"retention.ms", "300000", SourceStaticBrokerConfig, []string{"log.retention.minutes"}},
		{"segment.bytes", "4096", SourceStaticBrokerConfig, []string{"log.segment.bytes"}},
		{"segment.ms", "604800000", SourceDefaultConfig, []string{"log.roll.hours"}},
		{"flush.ms", "9223372036854775807", SourceDefaultConfig, []string{"log.flush.scheduler.interval.ms"}},
		{"cleanup.policy", "delete", SourceDefaultConfig, []string{"log.cleanup.policy"}},
	}
	for _, tc := range tests {
		e := byName[tc.name]
		if e.Value != tc.value || e.Source != tc.src {
			t.Errorf("%s: value %q source %v, want %q %v", tc.name, e.Value, e.Source, tc.value, tc.src)
		}
		var syn []string
		for _, s := range e.Synonyms {
			syn = append(syn, s.Name)
		}
		if strings.Join(syn, ",") != strings.Join(tc.synonyms, ",") {
			t.Errorf("%s: synonyms %v, want %v", tc.name, syn, tc.synonyms)
		}
	}
}

// TestTopicSettingsTable checks that every topic setting's broker synonym
// exists and has the same type family, and that the broker default is a
// valid topic value.
func TestTopicSettingsTable(t *testing.T) {
	b := Defaults()
	for _, ts := range TopicSettings() {
		if ts.Doc == "" {
			t.Errorf("%s: no doc", ts.Name)
		}
		v, _, _ := b.brokerDefault(&ts)
		if err := ValidateTopicConfig(ts.Name, v); err != nil {
			t.Errorf("%s: broker default %q is not a valid topic value: %v", ts.Name, v, err)
		}
	}
}

func TestErrorsMatchErrInvalidConfig(t *testing.T) {
	errs := []error{
		ValidateTopicConfig("nope", "1"),
		ValidateTopicConfig("retention.ms", "x"),
	}
	_, err := Defaults().TopicConfig(map[string]string{"segment.bytes": "1"})
	errs = append(errs, err)
	_, err = Load("", []string{"num.partitions=x"})
	errs = append(errs, err)
	for _, err := range errs {
		if !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%v does not match ErrInvalidConfig", err)
		}
	}
}
