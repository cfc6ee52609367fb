package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// A Kafka KRaft server.properties fails once, naming every line Sluice
// cannot honour (here the transaction settings) with its line number, and
// never as "unknown setting"; without those lines it loads, the Kafka-only
// tuning keys set aside for one warning. Its KRaft settings describe one
// combined node found through controller.quorum.bootstrap.servers, which
// Sluice runs as a single-node cluster: the CONTROLLER listener is set
// aside, not served to clients.
func TestKafkaServerProperties(t *testing.T) {
	const stock = "testdata/kafka-kraft.properties"
	_, err := Load(stock, nil)
	if err == nil {
		t.Fatal("the transaction settings were accepted")
	}
	msg := err.Error()
	for _, want := range []string{
		"config: 2 problems:",
		stock + ":32: transaction.state.log.replication.factor: not supported yet (transactions)",
		stock + ":33: transaction.state.log.min.isr: not supported yet (transactions)",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not contain %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "unknown setting") {
		t.Errorf("a Kafka key was called unknown:\n%s", msg)
	}

	body, err := os.ReadFile(stock)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, "transaction.") {
			kept = append(kept, line)
		}
	}
	b, err := Load(writeProps(t, strings.Join(kept, "\n")), nil)
	if err != nil {
		t.Fatalf("without the transaction lines: %v", err)
	}
	for _, k := range []string{"num.network.threads", "num.io.threads", "socket.send.buffer.bytes",
		"socket.receive.buffer.bytes", "num.recovery.threads.per.data.dir"} {
		if !slices.Contains(b.Ignored, k) {
			t.Errorf("%s is not among the ignored keys %v", k, b.Ignored)
		}
	}
	for _, k := range []string{"process.roles", "controller.listener.names", "controller.quorum.bootstrap.servers",
		"inter.broker.listener.name", "listener.security.protocol.map"} {
		if slices.Contains(b.Ignored, k) {
			t.Errorf("%s is ignored; it is a setting now", k)
		}
	}
	if b.ClusterMode() || !b.IsBroker() || !b.IsController() {
		t.Errorf("cluster mode %v, broker %v, controller %v; want a single node that is both", b.ClusterMode(), b.IsBroker(), b.IsController())
	}
	if len(b.ControllerListeners) != 1 || b.ControllerListeners[0].String() != "CONTROLLER://:9093" {
		t.Errorf("controller listeners %v", b.ControllerListeners)
	}
	if _, ok := b.ControllerListener(); ok {
		t.Error("a single node serves a controller listener")
	}
	if len(b.Listeners) != 1 || b.Listeners[0].String() != "PLAINTEXT://:9092" {
		t.Errorf("listeners %v, want the PLAINTEXT one only (CONTROLLER is Kafka's quorum listener)", b.Listeners)
	}
	if len(b.AdvertisedListeners) != 1 || b.AdvertisedListeners[0].Host != "localhost" {
		t.Errorf("advertised listeners %v", b.AdvertisedListeners)
	}
	if b.NodeID != 1 || b.SegmentBytes != 1073741824 || !slices.Equal(b.LogDirs, []string{"/tmp/kraft-combined-logs"}) {
		t.Errorf("settings not taken: node %d, segment %d, dirs %v", b.NodeID, b.SegmentBytes, b.LogDirs)
	}
}

// Every kind of problem of a file and of the overrides comes in one error,
// in file order, each with where it is.
func TestLoadReportsEveryProblem(t *testing.T) {
	file := writeProps(t, "ssl.keystore.location=/k.jks\nnum.io.threads=8\nlog.segment.bytes=huge\nlonely\nno.such.key=1\nauthorizer.class.name=x\n")
	_, err := Load(file, []string{"sasl.enabled.mechanisms=PLAIN", "num.partitons=2"})
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{
		"config: 7 problems:",
		file + ":1: ssl.keystore.location: not supported yet (TLS)",
		file + `:3: log.segment.bytes: "huge" is not an integer`,
		file + `:4: "lonely" has no value`,
		file + `:5: unknown setting "no.such.key"`,
		file + ":6: authorizer.class.name: not supported yet (ACLs)",
		"sasl.enabled.mechanisms: not supported yet (SASL authentication); remove it (from --set)",
		`unknown setting "num.partitons" (from --set); did you mean "num.partitions"?`,
	}
	last := -1
	for _, w := range want {
		i := strings.Index(err.Error(), w)
		if i < 0 {
			t.Errorf("error does not contain %q:\n%s", w, err)
			continue
		}
		if i < last {
			t.Errorf("%q is out of order:\n%s", w, err)
		}
		last = i
	}
	if strings.Contains(err.Error(), "num.io.threads") {
		t.Errorf("an ignored tuning key was reported as a problem:\n%s", err)
	}
}

func TestIgnoredKeysByOverride(t *testing.T) {
	b, err := Load("", []string{"num.io.threads=8", "log.dirs=" + filepath.Join(t.TempDir(), "d"), "num.io.threads=9"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(b.Ignored, []string{"num.io.threads"}) {
		t.Errorf("ignored %v, want num.io.threads once", b.Ignored)
	}
	if _, ok := b.Get("num.io.threads"); ok {
		t.Error("an ignored key became a setting")
	}
}

func TestCheckValue(t *testing.T) {
	if err := CheckValue("netio.engine", "std"); err != nil {
		t.Error(err)
	}
	if err := CheckValue("netio.engine", "fast"); err == nil || !strings.Contains(err.Error(), `netio.engine: "fast" is not one of auto, uring, std`) {
		t.Errorf("bad engine: %v", err)
	}
	if err := CheckValue("no.such", "1"); err == nil {
		t.Error("unknown setting accepted")
	}
}
