package config

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func writeProps(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "server.properties")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaults(t *testing.T) {
	b := Defaults()
	want := []Listener{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 9092}}
	checks := []struct {
		name     string
		got, exp any
	}{
		{"NodeID", b.NodeID, int32(0)},
		{"Listeners", b.Listeners, want},
		{"AdvertisedListeners", b.AdvertisedListeners, want},
		{"AdminListener", b.AdminListener, "127.0.0.1:9644"},
		{"NetioEngine", b.NetioEngine, "auto"},
		{"LogFormat", b.LogFormat, "text"},
		{"LogDirs", b.LogDirs, []string{"./data"}},
		{"NumPartitions", b.NumPartitions, int32(1)},
		{"DefaultReplicationFactor", b.DefaultReplicationFactor, int16(1)},
		{"AutoCreateTopics", b.AutoCreateTopics, true},
		{"DeleteTopicEnable", b.DeleteTopicEnable, true},
		{"SegmentBytes", b.SegmentBytes, int64(1 << 30)},
		{"RollMs", b.RollMs, int64(168 * 3600 * 1000)},
		{"RetentionMs", b.RetentionMs, int64(168 * 3600 * 1000)},
		{"RetentionBytes", b.RetentionBytes, int64(-1)},
		{"RetentionCheckIntervalMs", b.RetentionCheckIntervalMs, int64(300000)},
		{"IndexIntervalBytes", b.IndexIntervalBytes, int32(4096)},
		{"FlushIntervalMessages", b.FlushIntervalMessages, int64(math.MaxInt64)},
		{"FlushIntervalMs", b.FlushIntervalMs, int64(-1)},
		{"FlushMs()", b.FlushMs(), int64(math.MaxInt64)},
		{"OpenSegmentFilesMax", b.OpenSegmentFilesMax, int64(0)},
		{"MessageMaxBytes", b.MessageMaxBytes, int32(1048588)},
		{"SocketRequestMaxBytes", b.SocketRequestMaxBytes, int32(104857600)},
		{"LogAppendTime", b.LogAppendTime, false},
		{"QueuedMaxRequests", b.QueuedMaxRequests, int32(500)},
		{"ConnectionsMaxIdleMs", b.ConnectionsMaxIdleMs, int64(600000)},
		{"MaxConnections", b.MaxConnections, int32(math.MaxInt32)},
		{"ProducerIDExpirationMs", b.ProducerIDExpirationMs, int64(86400000)},
		{"OffsetsTopicNumPartitions", b.OffsetsTopicNumPartitions, int32(50)},
		{"OffsetsTopicReplicationFactor", b.OffsetsTopicReplicationFactor, int16(1)},
		{"GroupInitialRebalanceDelayMs", b.GroupInitialRebalanceDelayMs, int32(3000)},
		{"GroupMinSessionTimeoutMs", b.GroupMinSessionTimeoutMs, int32(6000)},
		{"GroupMaxSessionTimeoutMs", b.GroupMaxSessionTimeoutMs, int32(1800000)},
		{"OffsetsRetentionMinutes", b.OffsetsRetentionMinutes, int32(10080)},
		{"CleanupPolicy", b.CleanupPolicy, "delete"},
		{"CompressionType", b.CompressionType, "producer"},
		{"MinInsyncReplicas", b.MinInsyncReplicas, int32(1)},
	}
	for _, c := range checks {
		if !equal(c.got, c.exp) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.exp)
		}
	}
	if _, ok := b.Raw["log.retention.ms"]; ok {
		t.Errorf("Raw has log.retention.ms although it is unset")
	}
	if b.Raw["log.retention.hours"] != "168" {
		t.Errorf("Raw[log.retention.hours] = %q", b.Raw["log.retention.hours"])
	}
}

func equal(a, b any) bool {
	switch x := a.(type) {
	case []Listener:
		return slices.Equal(x, b.([]Listener))
	case []string:
		return slices.Equal(x, b.([]string))
	}
	return a == b
}

func TestFileAndOverridePrecedence(t *testing.T) {
	file := writeProps(t, `
# a comment
num.partitions=3
log.segment.bytes = 1048576
listeners: PLAINTEXT://0.0.0.0:19092
log.dirs=/a, /b
auto.create.topics.enable=FALSE
`)
	b, err := Load(file, []string{"num.partitions=7", "log.message.timestamp.type=LogAppendTime"})
	if err != nil {
		t.Fatal(err)
	}
	if b.NumPartitions != 7 {
		t.Errorf("--set should beat the file: NumPartitions = %d", b.NumPartitions)
	}
	if b.SegmentBytes != 1048576 {
		t.Errorf("SegmentBytes = %d", b.SegmentBytes)
	}
	if b.Listeners[0].Addr() != "0.0.0.0:19092" || b.AdvertisedListeners[0].Port != 19092 {
		t.Errorf("listeners = %v, advertised %v", b.Listeners, b.AdvertisedListeners)
	}
	if !slices.Equal(b.LogDirs, []string{"/a", "/b"}) {
		t.Errorf("LogDirs = %q", b.LogDirs)
	}
	if b.AutoCreateTopics || !b.LogAppendTime {
		t.Errorf("AutoCreateTopics=%v LogAppendTime=%v", b.AutoCreateTopics, b.LogAppendTime)
	}
	if b.Origin("num.partitions") != "--set" || b.Origin("log.segment.bytes") != file || b.Origin("queued.max.requests") != "default" {
		t.Errorf("origins: %q %q %q", b.Origin("num.partitions"), b.Origin("log.segment.bytes"), b.Origin("queued.max.requests"))
	}
	if v, _ := b.Get("num.partitions"); v != "7" {
		t.Errorf("Raw num.partitions = %q", v)
	}
}

func TestRetentionPrecedence(t *testing.T) {
	const h, m = 3_600_000, 60_000
	tests := []struct {
		set  []string
		want int64
	}{
		{nil, 168 * h},
		{[]string{"log.retention.hours=1"}, 1 * h},
		{[]string{"log.retention.hours=1", "log.retention.minutes=5"}, 5 * m},
		{[]string{"log.retention.hours=1", "log.retention.minutes=5", "log.retention.ms=1234"}, 1234},
		{[]string{"log.retention.ms=1234"}, 1234},
		{[]string{"log.retention.minutes=-1"}, -1},
		{[]string{"log.retention.hours=-1"}, -1},
		{[]string{"log.retention.ms=-1", "log.retention.hours=5"}, -1},
		{[]string{"log.retention.ms=", "log.retention.minutes=2"}, 2 * m}, // empty = unset
	}
	for _, tc := range tests {
		b, err := Load("", tc.set)
		if err != nil {
			t.Fatalf("%v: %v", tc.set, err)
		}
		if b.RetentionMs != tc.want {
			t.Errorf("%v: RetentionMs = %d, want %d", tc.set, b.RetentionMs, tc.want)
		}
		topic, _ := b.TopicConfig(nil)
		if topic.RetentionMs != tc.want {
			t.Errorf("%v: topic RetentionMs = %d, want %d", tc.set, topic.RetentionMs, tc.want)
		}
	}
}

func TestRollAndFlush(t *testing.T) {
	b, err := Load("", []string{"log.roll.hours=2"})
	if err != nil || b.RollMs != 2*3_600_000 {
		t.Fatalf("roll hours: %v %d", err, b.RollMs)
	}
	b, err = Load("", []string{"log.roll.hours=2", "log.roll.ms=500"})
	if err != nil || b.RollMs != 500 {
		t.Fatalf("roll ms: %v %d", err, b.RollMs)
	}
	b, err = Load("", []string{"log.flush.scheduler.interval.ms=2000"})
	if err != nil || b.FlushIntervalMs != -1 || b.FlushMs() != 2000 {
		t.Fatalf("flush scheduler: %v %d %d", err, b.FlushIntervalMs, b.FlushMs())
	}
	b, err = Load("", []string{"log.flush.interval.ms=10", "log.flush.interval.messages=1"})
	if err != nil || b.FlushMs() != 10 || b.FlushIntervalMessages != 1 {
		t.Fatalf("flush: %v %d %d", err, b.FlushMs(), b.FlushIntervalMessages)
	}
}

func TestNodeIDAliases(t *testing.T) {
	tests := []struct {
		set     []string
		want    int32
		wantErr string
	}{
		{nil, 0, ""},
		{[]string{"node.id=3"}, 3, ""},
		{[]string{"broker.id=4"}, 4, ""},
		{[]string{"broker.id=4", "node.id=4"}, 4, ""},
		{[]string{"broker.id=4", "node.id=5"}, 0, `broker.id: "4" differs from node.id "5"`},
		{[]string{"node.id=-2"}, 0, `node.id: "-2" is below the minimum 0`},
	}
	for _, tc := range tests {
		b, err := Load("", tc.set)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%v: err %v, want %q", tc.set, err, tc.wantErr)
			}
			continue
		}
		if err != nil || b.NodeID != tc.want {
			t.Errorf("%v: %v NodeID=%v want %d", tc.set, err, b, tc.want)
		}
	}
}

func TestLogDirAlias(t *testing.T) {
	b, _ := Load("", []string{"log.dir=/x"})
	if !slices.Equal(b.LogDirs, []string{"/x"}) {
		t.Errorf("log.dir alone: %q", b.LogDirs)
	}
	b, _ = Load("", []string{"log.dir=/x", "log.dirs=/y,/z"})
	if !slices.Equal(b.LogDirs, []string{"/y", "/z"}) {
		t.Errorf("log.dirs wins: %q", b.LogDirs)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		file string // properties body, "" = no file
		set  []string
		want []string // substrings of the error
	}{
		{"unknown key in --set", "", []string{"log.segmnt.bytes=5"}, []string{`unknown setting "log.segmnt.bytes"`, `did you mean "log.segment.bytes"`}},
		{"unknown key in file", "no.such.thing=1\n", nil, []string{`unknown setting "no.such.thing"`, "server.properties"}},
		{"not an integer", "", []string{"log.segment.bytes=abc"}, []string{`config: log.segment.bytes: "abc" is not an integer`}},
		{"int overflow", "", []string{"num.partitions=3000000000"}, []string{`num.partitions: "3000000000" is out of range`}},
		{"below min", "", []string{"log.segment.bytes=13"}, []string{`log.segment.bytes: "13" is below the minimum 14`}},
		{"above max", "", []string{"default.replication.factor=40000"}, []string{`default.replication.factor: "40000" is above the maximum 32767`}},
		{"bad bool", "auto.create.topics.enable=yes\n", nil, []string{`auto.create.topics.enable: "yes" is not a boolean`}},
		{"bad enum", "", []string{"netio.engine=epoll"}, []string{`netio.engine: "epoll" is not one of auto, uring, std`}},
		{"bad timestamp type", "", []string{"log.message.timestamp.type=createtime"}, []string{`log.message.timestamp.type: "createtime"`}},
		{"bad long", "", []string{"log.retention.ms=1.5"}, []string{`log.retention.ms: "1.5" is not an integer`}},
		{"empty non-nullable", "", []string{"num.partitions="}, []string{`num.partitions: "" is not an integer`}},
		{"set without equals", "", []string{"num.partitions"}, []string{`--set "num.partitions": expected key=value`}},
		{"bad admin listener", "", []string{"admin.listener=nowhere"}, []string{`admin.listener: "nowhere" is not host:port`}},
		{"session timeouts", "", []string{"group.min.session.timeout.ms=9", "group.max.session.timeout.ms=8"}, []string{"group.min.session.timeout.ms"}},
		{"cleanup policy", "", []string{"log.cleanup.policy=delete,shred"}, []string{`log.cleanup.policy: "delete,shred": item "shred"`}},
		{"cleanable ratio", "", []string{"log.cleaner.min.cleanable.ratio=2"}, []string{`log.cleaner.min.cleanable.ratio: "2" is above the maximum 1`}},
		{"cleaner io rate", "", []string{"log.cleaner.io.max.bytes.per.second=fast"}, []string{`log.cleaner.io.max.bytes.per.second: "fast" is not a number`}},
		{"malformed file", "a=1\nlonely\n", nil, []string{"server.properties:2: ", "lonely"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := ""
			if tc.file != "" {
				file = writeProps(t, tc.file)
			}
			_, err := Load(file, tc.set)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.properties"), nil); err == nil {
		t.Error("missing file: no error")
	}
}

func TestListeners(t *testing.T) {
	good := []struct {
		in   string
		want []Listener
	}{
		{"PLAINTEXT://127.0.0.1:9092", []Listener{{"PLAINTEXT", "127.0.0.1", 9092}}},
		{"plaintext://:9092", []Listener{{"PLAINTEXT", "", 9092}}},
		{" PLAINTEXT://[::1]:0 ", []Listener{{"PLAINTEXT", "::1", 0}}},
		{"PLAINTEXT://broker.example:19092,", []Listener{{"PLAINTEXT", "broker.example", 19092}}},
	}
	for _, tc := range good {
		got, err := ParseListeners(tc.in)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%q: got %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	bad := []struct{ in, want string }{
		{"", "no listener"},
		{"127.0.0.1:9092", "not of the form NAME://host:port"},
		{"SSL://127.0.0.1:9093", "listener SSL is not supported"},
		{"SASL_PLAINTEXT://h:1", "not supported"},
		{"PLAINTEXT://127.0.0.1", "is not host:port"},
		{"PLAINTEXT://h:99999", "port \"99999\""},
		{"PLAINTEXT://h:http", "port \"http\""},
		{"PLAINTEXT://a:1,PLAINTEXT://b:2", "appears twice"},
	}
	for _, tc := range bad {
		if _, err := ParseListeners(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want %q", tc.in, err, tc.want)
		}
	}
	if _, err := Load("", []string{"listeners=SSL://:9093"}); err == nil || !strings.Contains(err.Error(), "config: listeners:") {
		t.Errorf("Load with SSL listener: %v", err)
	}
	b, err := Load("", []string{"listeners=PLAINTEXT://0.0.0.0:9092", "advertised.listeners=PLAINTEXT://kafka.local:9092"})
	if err != nil || b.AdvertisedListeners[0].Host != "kafka.local" || b.Listeners[0].Host != "0.0.0.0" {
		t.Errorf("advertised: %v %+v", err, b)
	}
	if l := b.AdvertisedListeners[0]; l.String() != "PLAINTEXT://kafka.local:9092" {
		t.Errorf("String() = %q", l.String())
	}
}

func TestDescribe(t *testing.T) {
	b, err := Load("", []string{"num.partitions=4"})
	if err != nil {
		t.Fatal(err)
	}
	entries := b.Describe()
	if len(entries) != len(Settings()) {
		t.Fatalf("%d entries for %d settings", len(entries), len(Settings()))
	}
	if !slices.IsSortedFunc(entries, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) }) {
		t.Error("entries not sorted")
	}
	byName := map[string]Entry{}
	for _, e := range entries {
		byName[e.Name] = e
	}
	np := byName["num.partitions"]
	if np.Value != "4" || np.Source != SourceStaticBrokerConfig || np.Default != "1" || np.Origin != "--set" || !np.ReadOnly {
		t.Errorf("num.partitions entry: %+v", np)
	}
	if e := byName["log.retention.hours"]; e.Value != "168" || e.Source != SourceDefaultConfig || e.Type.KafkaType() != 3 {
		t.Errorf("log.retention.hours entry: %+v", e)
	}
	if e := byName["log.retention.ms"]; !e.Null || e.Value != "" {
		t.Errorf("log.retention.ms entry should be null: %+v", e)
	}
	if SourceStaticBrokerConfig.String() != "STATIC_BROKER_CONFIG" || Source(4) != SourceStaticBrokerConfig {
		t.Error("Source codes")
	}
}

// TestSettingsTable checks the table itself: unique names, docs, and that
// every default passes its own validation (init panics otherwise).
func TestSettingsTable(t *testing.T) {
	for _, s := range Settings() {
		if s.Doc == "" || strings.HasSuffix(s.Doc, " ") {
			t.Errorf("%s: bad doc %q", s.Name, s.Doc)
		}
		if _, ok := Lookup(s.Name); !ok {
			t.Errorf("%s: Lookup fails", s.Name)
		}
	}
	if _, ok := Lookup("nope"); ok {
		t.Error("Lookup(nope) succeeded")
	}
}

// TestSampleFile checks that the shipped sample loads and, since it only
// repeats defaults, yields the default configuration.
func TestSampleFile(t *testing.T) {
	b, err := Load("server.properties", nil)
	if err != nil {
		t.Fatal(err)
	}
	d := Defaults()
	for name, v := range d.Raw {
		if b.Raw[name] != v {
			t.Errorf("%s: sample gives %q, default is %q", name, b.Raw[name], v)
		}
	}
}
