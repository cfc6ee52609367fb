package config

import (
	"math"
	"slices"
	"strings"
	"testing"
)

// The node files of the three-node example cluster load as what they say:
// node 1 broker and the one controller, nodes 2 and 3 brokers, all with
// the same voter; and they fit together on one machine.
func TestThreeNodeExample(t *testing.T) {
	var nodes []*Broker
	for _, f := range []string{"node1", "node2", "node3"} {
		b, err := Load("testdata/cluster/"+f+".properties", nil)
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, b)
	}
	voters := []Voter{{ID: 1, Host: "127.0.0.1", Port: 9093}}
	for i, b := range nodes {
		id := int32(i + 1)
		if b.NodeID != id || !b.ClusterMode() || !slices.Equal(b.Voters, voters) || !b.IsBroker() {
			t.Errorf("node %d: id %d, cluster %v, voters %v, broker %v", id, b.NodeID, b.ClusterMode(), b.Voters, b.IsBroker())
		}
		want := Listener{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 9092}
		if id > 1 {
			want.Port = 9092 + int(id)
		}
		if !slices.Equal(b.Listeners, []Listener{want}) || !slices.Equal(b.AdvertisedListeners, []Listener{want}) {
			t.Errorf("node %d: listeners %v, advertised %v; want only %v (the controller listener is not a broker listener)", id, b.Listeners, b.AdvertisedListeners, want)
		}
		if l, ok := b.InterBrokerListener(); !ok || l != want {
			t.Errorf("node %d: inter-broker listener %v %v", id, l, ok)
		}
		if b.ControllerListenerName() != "CONTROLLER" || b.DefaultReplicationFactor != 3 || b.MinInsyncReplicas != 2 || b.OffsetsTopicReplicationFactor != 3 {
			t.Errorf("node %d: controller listener name %q, rf %d, min isr %d, offsets rf %d", id,
				b.ControllerListenerName(), b.DefaultReplicationFactor, b.MinInsyncReplicas, b.OffsetsTopicReplicationFactor)
		}
		l, ok := b.ControllerListener()
		if controller := id == 1; b.IsController() != controller || ok != controller {
			t.Errorf("node %d: controller %v, controller listener %v %v", id, b.IsController(), l, ok)
		}
		if ok && l.String() != "CONTROLLER://127.0.0.1:9093" {
			t.Errorf("node %d: controller listener %v", id, l)
		}
	}
	if err := CheckLocalCluster(nodes...); err != nil {
		t.Errorf("the example cluster does not fit on one machine: %v", err)
	}
}

// issueNode1 and issueNode2 are the cluster of issue 16's text, with the
// node.id and controller.listener.names that Kafka (and Sluice) require.
var (
	issueNode1 = []string{"process.roles=broker,controller", "node.id=1", "controller.quorum.voters=1@127.0.0.1:19093",
		"controller.listener.names=CONTROLLER", "listeners=PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093", "log.dirs=d1"}
	issueNode2 = []string{"process.roles=broker", "node.id=2", "controller.quorum.voters=1@127.0.0.1:19093",
		"controller.listener.names=CONTROLLER", "listeners=PLAINTEXT://127.0.0.1:19094", "log.dirs=d2"}
)

func with(base []string, set ...string) []string { return append(slices.Clip(base), set...) }

// without drops the setting key from base.
func without(base []string, key string) []string {
	return slices.DeleteFunc(slices.Clone(base), func(s string) bool { return strings.HasPrefix(s, key+"=") })
}

func TestClusterConfigs(t *testing.T) {
	tests := []struct {
		name string
		set  []string
		want string // substring of the error; "" = loads
	}{
		{"issue node 1", issueNode1, ""},
		{"issue node 2", issueNode2, ""},
		{"issue node 3", with(issueNode2, "node.id=3", "listeners=PLAINTEXT://127.0.0.1:19095"), ""},
		{"broker.id names the node", with(without(issueNode2, "node.id"), "broker.id=2"), ""},
		{"single node with roles", []string{"process.roles=broker,controller"}, ""},
		{"single node advertising 0.0.0.0 as today", []string{"listeners=PLAINTEXT://0.0.0.0:9092"}, ""},
		{"controller listener advertised by a controller (KIP-853)",
			with(issueNode1, "advertised.listeners=PLAINTEXT://localhost:19092,CONTROLLER://localhost:19093"), ""},
		{"named listener mapped to PLAINTEXT",
			[]string{"listeners=INTERNAL://127.0.0.1:9092", "listener.security.protocol.map=INTERNAL:PLAINTEXT", "inter.broker.listener.name=INTERNAL"}, ""},
		{"rack-aware selector", []string{"replica.selector.class=org.apache.kafka.common.replica.RackAwareReplicaSelector", "broker.rack=r1"}, ""},

		// Roles and voters.
		{"voters without roles", with(issueNode2, "process.roles="), "process.roles: must be set"},
		{"voters without node.id", without(issueNode2, "node.id"), "node.id: must be set when controller.quorum.voters is set"},
		{"voters without controller listener names", with(issueNode2, "controller.listener.names="), "controller.listener.names: must be set"},
		{"controller not among the voters", with(issueNode1, "node.id=4"), `controller.quorum.voters: "1@127.0.0.1:19093" does not list node.id 4`},
		{"controller without its listener", with(issueNode1, "listeners=PLAINTEXT://127.0.0.1:19092"), "listeners: \"PLAINTEXT://127.0.0.1:19092\" has no CONTROLLER listener"},
		{"voter port is not the listener's", with(issueNode1, "controller.quorum.voters=1@127.0.0.1:29093"), "voter 1@127.0.0.1:29093 names port 29093, but this node's controller listener CONTROLLER://127.0.0.1:19093 is on port 19093"},
		{"broker among the voters", with(issueNode2, "controller.quorum.voters=1@127.0.0.1:19093,2@127.0.0.1:19096"), "lists node.id 2, but process.roles \"broker\" runs no controller"},
		{"broker with a controller listener", with(issueNode2, "listeners=PLAINTEXT://127.0.0.1:19094,CONTROLLER://127.0.0.1:19096"), "has controller listener CONTROLLER, but process.roles \"broker\" runs no controller"},
		{"broker advertising a controller listener", with(issueNode2, "advertised.listeners=PLAINTEXT://127.0.0.1:19094,CONTROLLER://127.0.0.1:19096"), "listeners does not define"},
		{"controller-only with a broker listener", with(issueNode1, "process.roles=controller"), "has broker listener PLAINTEXT, but process.roles \"controller\" serves only controller listeners"},
		{"controller-only", with(issueNode1, "process.roles=controller", "listeners=CONTROLLER://127.0.0.1:19093"), ""},
		{"broker without voters", []string{"process.roles=broker"}, `process.roles: "broker" needs controller.quorum.voters`},
		{"controller without voters", []string{"process.roles=controller"}, `process.roles: "controller" needs controller.quorum.voters`},
		{"broker with bootstrap servers only", []string{"process.roles=broker", "controller.quorum.bootstrap.servers=h:9093"}, "controller.quorum.bootstrap.servers alone is taken only on a single node"},
		{"role twice", []string{"process.roles=broker,broker"}, `process.roles: "broker,broker" names broker twice`},
		{"unknown role", []string{"process.roles=zookeeper"}, `item "zookeeper" is not one of broker, controller`},
		{"voter without id", []string{"controller.quorum.voters=127.0.0.1:9093"}, "is not of the form id@host:port"},
		{"voter id not a number", []string{"controller.quorum.voters=a@h:9093"}, `voter id "a" is not a node id`},
		{"negative voter id", []string{"controller.quorum.voters=-1@h:9093"}, `voter id "-1" is not a node id`},
		{"voter without port", []string{"controller.quorum.voters=1@h"}, `"h" is not host:port`},
		{"voter port 0", []string{"controller.quorum.voters=1@h:0"}, "voter 1 needs a host and a non-zero port"},
		{"voter without host", []string{"controller.quorum.voters=1@:9093"}, "voter 1 needs a host"},
		{"voter twice", []string{"controller.quorum.voters=1@h:9093,1@g:9093"}, "voter id 1 appears twice"},
		{"bootstrap server without port", []string{"controller.quorum.bootstrap.servers=h"}, `controller.quorum.bootstrap.servers: "h": "h" is not host:port`},

		// Listeners and protocols.
		{"SSL listener", []string{"listeners=SSL://:9093"}, "listener SSL is not supported: its security protocol is SSL and only PLAINTEXT is served so far"},
		{"name mapped to SASL_SSL", []string{"listeners=EXT://:9093", "listener.security.protocol.map=EXT:SASL_SSL"}, "listener EXT is not supported: its security protocol is SASL_SSL"},
		{"unmapped listener name", []string{"listeners=INTERNAL://:9093"}, "listener INTERNAL is not in listener.security.protocol.map"},
		{"map entry without protocol", []string{"listener.security.protocol.map=PLAINTEXT"}, `"PLAINTEXT" is not of the form NAME:PROTOCOL`},
		{"map to an unknown protocol", []string{"listener.security.protocol.map=PLAINTEXT:TLS"}, `"TLS" is not a security protocol`},
		{"map names a listener twice", []string{"listener.security.protocol.map=PLAINTEXT:PLAINTEXT,plaintext:SSL"}, "listener PLAINTEXT is mapped twice"},
		{"configured map without the controller listener", with(issueNode1, "listener.security.protocol.map=PLAINTEXT:PLAINTEXT"), "controller.listener.names: \"CONTROLLER\": listener CONTROLLER is not in listener.security.protocol.map"},
		{"controller listener over SSL", with(issueNode1, "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:SSL"), "listener CONTROLLER is not supported"},
		{"two listeners on one port", with(issueNode1, "listeners=PLAINTEXT://127.0.0.1:19093,CONTROLLER://127.0.0.1:19093"), "listeners PLAINTEXT and CONTROLLER both use port 19093"},
		{"only controller listeners", []string{"controller.listener.names=CONTROLLER", "listeners=CONTROLLER://:9093"}, "has no broker listener"},
		{"inter-broker over the controller listener", with(issueNode1, "inter.broker.listener.name=CONTROLLER"), "inter.broker.listener.name: CONTROLLER is a controller listener"},
		{"inter-broker listener not mapped", with(issueNode2, "inter.broker.listener.name=INTERNAL"), "inter.broker.listener.name: INTERNAL is not in listener.security.protocol.map"},
		{"inter-broker listener not advertised",
			with(issueNode2, "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT", "inter.broker.listener.name=INTERNAL"),
			"inter.broker.listener.name: INTERNAL is not one of the advertised broker listeners (PLAINTEXT)"},
		{"cluster node advertising 0.0.0.0", with(issueNode2, "listeners=PLAINTEXT://0.0.0.0:19094"), "advertised.listeners: PLAINTEXT://0.0.0.0:19094 is the non-routable address 0.0.0.0"},
		{"cluster node advertising ::", with(issueNode1, "listeners=PLAINTEXT://[::]:19092,CONTROLLER://127.0.0.1:19093"), "non-routable address ::"},

		// Replication settings.
		{"fetch wait above lag time", []string{"replica.fetch.wait.max.ms=30001"}, `replica.fetch.wait.max.ms: "30001" is above replica.lag.time.max.ms "30000"`},
		{"fetch wait equal to lag time", []string{"replica.fetch.wait.max.ms=1000", "replica.lag.time.max.ms=1000"}, ""},
		{"heartbeat not below session", []string{"broker.heartbeat.interval.ms=9000"}, `broker.heartbeat.interval.ms: "9000" is not below broker.session.timeout.ms "9000"`},
		{"min.insync.replicas 0", []string{"min.insync.replicas=0"}, `min.insync.replicas: "0" is below the minimum 1`},
		{"no replica fetchers", []string{"num.replica.fetchers=0"}, `num.replica.fetchers: "0" is below the minimum 1`},
		{"unknown replica selector", []string{"replica.selector.class=com.example.Nearest"}, `replica.selector.class: "com.example.Nearest" is not a replica selector Sluice has`},
		{"negative throttle", []string{"leader.replication.throttled.rate=-1"}, `leader.replication.throttled.rate: "-1" is below the minimum 0`},
		{"imbalance check every 0 s", []string{"leader.imbalance.check.interval.seconds=0"}, "below the minimum 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load("", tc.set)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted; want an error with %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q\ndoes not contain %q", err, tc.want)
			}
		})
	}
}

// With nothing configured a node is a single-node cluster, as before the
// cluster settings existed, and the replication settings have Kafka's
// defaults.
func TestClusterDefaults(t *testing.T) {
	b := Defaults()
	plain := Listener{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 9092}
	if b.ClusterMode() || !b.IsBroker() || !b.IsController() || len(b.ProcessRoles) != 0 || len(b.Voters) != 0 {
		t.Errorf("cluster %v broker %v controller %v roles %v voters %v", b.ClusterMode(), b.IsBroker(), b.IsController(), b.ProcessRoles, b.Voters)
	}
	if l, ok := b.ControllerListener(); ok || b.ControllerListenerName() != "" || len(b.ControllerListeners) != 0 {
		t.Errorf("controller listener %v %v %q %v", l, ok, b.ControllerListenerName(), b.ControllerListeners)
	}
	if l, ok := b.InterBrokerListener(); !ok || l != plain || b.InterBrokerListenerName != "PLAINTEXT" {
		t.Errorf("inter-broker listener %v %v %q", l, ok, b.InterBrokerListenerName)
	}
	if b.SecurityProtocolMap["SASL_SSL"] != "SASL_SSL" || b.SecurityProtocolMap["PLAINTEXT"] != "PLAINTEXT" || len(b.SecurityProtocolMap) != 4 {
		t.Errorf("protocol map %v", b.SecurityProtocolMap)
	}
	checks := []struct {
		name     string
		got, exp any
	}{
		{"ReplicaLagTimeMaxMs", b.ReplicaLagTimeMaxMs, int64(30000)},
		{"ReplicaFetchMaxBytes", b.ReplicaFetchMaxBytes, int32(1048576)},
		{"ReplicaFetchResponseMaxBytes", b.ReplicaFetchResponseMaxBytes, int32(10485760)},
		{"ReplicaFetchWaitMaxMs", b.ReplicaFetchWaitMaxMs, int32(500)},
		{"ReplicaFetchMinBytes", b.ReplicaFetchMinBytes, int32(1)},
		{"ReplicaFetchBackoffMs", b.ReplicaFetchBackoffMs, int32(1000)},
		{"NumReplicaFetchers", b.NumReplicaFetchers, int32(1)},
		{"ReplicaHighWatermarkCheckpointIntervalMs", b.ReplicaHighWatermarkCheckpointIntervalMs, int64(5000)},
		{"ReplicaSelectorClass", b.ReplicaSelectorClass, ""},
		{"UncleanLeaderElection", b.UncleanLeaderElection, false},
		{"AutoLeaderRebalanceEnable", b.AutoLeaderRebalanceEnable, true},
		{"LeaderImbalanceCheckIntervalSeconds", b.LeaderImbalanceCheckIntervalSeconds, int64(300)},
		{"LeaderImbalancePerBrokerPercentage", b.LeaderImbalancePerBrokerPercentage, int32(10)},
		{"BrokerHeartbeatIntervalMs", b.BrokerHeartbeatIntervalMs, int32(2000)},
		{"BrokerSessionTimeoutMs", b.BrokerSessionTimeoutMs, int32(9000)},
		{"ControlledShutdownEnable", b.ControlledShutdownEnable, true},
		{"LeaderReplicationThrottledRate", b.LeaderReplicationThrottledRate, int64(math.MaxInt64)},
		{"FollowerReplicationThrottledRate", b.FollowerReplicationThrottledRate, int64(math.MaxInt64)},
		{"BrokerRack", b.BrokerRack, ""},
	}
	for _, c := range checks {
		if c.got != c.exp {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.exp)
		}
	}
	if _, ok := b.Get("process.roles"); ok {
		t.Error("process.roles has a value although unset")
	}
}

func TestClusterSettingsAreRead(t *testing.T) {
	b, err := Load("", with(issueNode1, "broker.rack=rack-a", "replica.lag.time.max.ms=10000", "replica.fetch.wait.max.ms=100",
		"num.replica.fetchers=4", "broker.session.timeout.ms=3000", "broker.heartbeat.interval.ms=500",
		"controlled.shutdown.enable=false", "unclean.leader.election.enable=true", "follower.replication.throttled.rate=1000",
		"controller.quorum.bootstrap.servers=127.0.0.1:19093", "controller.listener.names=controller"))
	if err != nil {
		t.Fatal(err)
	}
	if b.BrokerRack != "rack-a" || b.ReplicaLagTimeMaxMs != 10000 || b.ReplicaFetchWaitMaxMs != 100 || b.NumReplicaFetchers != 4 ||
		b.BrokerSessionTimeoutMs != 3000 || b.BrokerHeartbeatIntervalMs != 500 || b.ControlledShutdownEnable ||
		!b.UncleanLeaderElection || b.FollowerReplicationThrottledRate != 1000 ||
		!slices.Equal(b.QuorumBootstrapServers, []string{"127.0.0.1:19093"}) {
		t.Errorf("settings not taken: %+v", b)
	}
	if !slices.Equal(b.ControllerListenerNames, []string{"CONTROLLER"}) || b.SecurityProtocolMap["CONTROLLER"] != "PLAINTEXT" {
		t.Errorf("controller listener names %v, map %v", b.ControllerListenerNames, b.SecurityProtocolMap)
	}
	if v, ok := b.Voter(1); !ok || v.Addr() != "127.0.0.1:19093" || v.String() != "1@127.0.0.1:19093" {
		t.Errorf("voter 1: %v %v", v, ok)
	}
	if _, ok := b.Voter(2); ok {
		t.Error("voter 2 exists")
	}
	if !slices.Equal(b.AdvertisedControllerListeners, b.ControllerListeners) || len(b.ControllerListeners) != 1 {
		t.Errorf("advertised controller listeners %v, controller listeners %v", b.AdvertisedControllerListeners, b.ControllerListeners)
	}
	if e := describeEntry(b, "process.roles"); e.Value != "broker,controller" || e.Source != SourceStaticBrokerConfig {
		t.Errorf("DescribeConfigs of process.roles: %+v", e)
	}
}

func describeEntry(b *Broker, name string) Entry {
	for _, e := range b.Describe() {
		if e.Name == name {
			return e
		}
	}
	return Entry{}
}

func TestCheckLocalCluster(t *testing.T) {
	load := func(set []string) *Broker {
		b, err := Load("", set)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	n1 := with(issueNode1, "admin.listener=127.0.0.1:19644")
	n2 := with(issueNode2, "admin.listener=127.0.0.1:19645")
	n3 := with(issueNode2, "node.id=3", "listeners=PLAINTEXT://127.0.0.1:19095", "log.dirs=d3", "admin.listener=127.0.0.1:19646")
	tests := []struct {
		name  string
		nodes [][]string
		want  string
	}{
		{"fits", [][]string{n1, n2, n3}, ""},
		{"same id", [][]string{n1, n2, with(n3, "node.id=2")}, "node.id 2 is used by two nodes"},
		{"same port", [][]string{n1, n2, with(n3, "listeners=PLAINTEXT://127.0.0.1:19094")}, "node.id 3: listener PLAINTEXT (127.0.0.1:19094) uses port 19094, as node.id 2's listener PLAINTEXT does"},
		{"same admin port", [][]string{n1, n2, with(n3, "admin.listener=127.0.0.1:19644")}, "admin.listener (127.0.0.1:19644) uses port 19644"},
		{"same log dir", [][]string{n1, n2, with(n3, "log.dirs=./d2/")}, "node.id 3: log.dirs d2 is also node.id 2's"},
		{"other voters", [][]string{n1, n2, with(n3, "controller.quorum.voters=1@127.0.0.2:19093")}, "node.id 3: controller.quorum.voters \"1@127.0.0.2:19093\" differs"},
		{"single node", [][]string{n1, {"log.dirs=d9", "listeners=PLAINTEXT://127.0.0.1:0", "admin.listener="}}, "node.id 0: controller.quorum.voters is not set"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var nodes []*Broker
			for _, set := range tc.nodes {
				nodes = append(nodes, load(set))
			}
			err := CheckLocalCluster(nodes...)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestThrottledReplicas(t *testing.T) {
	tests := []struct {
		in   string
		want ThrottledReplicas
		err  string
	}{
		{"", ThrottledReplicas{}, ""},
		{"*", ThrottledReplicas{All: true}, ""},
		{" 0:1 , 1:2,", ThrottledReplicas{Replicas: []ThrottledReplica{{0, 1}, {1, 2}}}, ""},
		{"0:1,*", ThrottledReplicas{}, `"*" is not partition:broker`},
		{"0-1", ThrottledReplicas{}, `"0-1" is not partition:broker`},
		{"a:1", ThrottledReplicas{}, "is not partition:broker"},
		{"0:99999999999", ThrottledReplicas{}, "is not partition:broker"},
	}
	for _, tc := range tests {
		got, err := ParseThrottledReplicas(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got.All != tc.want.All || !slices.Equal(got.Replicas, tc.want.Replicas) {
			t.Errorf("%q: %+v %v, want %+v", tc.in, got, err, tc.want)
		}
	}
	r, _ := ParseThrottledReplicas("0:1")
	if !r.Has(0, 1) || r.Has(1, 0) || !(ThrottledReplicas{All: true}).Has(7, 7) {
		t.Error("Has")
	}
	if err := ValidateTopicConfig("leader.replication.throttled.replicas", "0:x"); err == nil ||
		!strings.Contains(err.Error(), "config: leader.replication.throttled.replicas:") {
		t.Errorf("topic validation: %v", err)
	}

	b := Defaults()
	tc, err := b.TopicConfig(map[string]string{"follower.replication.throttled.replicas": " 0:1, 1:2 "})
	if err != nil || tc.FollowerReplicationThrottledReplicas != "0:1,1:2" || tc.LeaderReplicationThrottledReplicas != "" {
		t.Errorf("topic config: %v %+v", err, tc)
	}
	for _, e := range b.DescribeTopicConfig(nil) {
		if e.Name == "leader.replication.throttled.replicas" &&
			(e.Value != "" || e.Source != SourceDefaultConfig || len(e.Synonyms) != 1 || e.Synonyms[0].Name != e.Name) {
			t.Errorf("describe: %+v", e)
		}
	}
}
