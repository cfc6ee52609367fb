package config

import (
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Voter is one entry of controller.quorum.voters: a controller's node id
// and the address of its controller listener.
type Voter struct {
	ID   int32
	Host string
	Port int
}

// Addr returns host:port, suitable for net.Dial.
func (v Voter) Addr() string { return net.JoinHostPort(v.Host, strconv.Itoa(v.Port)) }

// String returns the voter in id@host:port form.
func (v Voter) String() string { return strconv.Itoa(int(v.ID)) + "@" + v.Addr() }

// ParseVoters parses controller.quorum.voters: id@host:port entries with
// distinct ids >= 0, a host and a non-zero port ("1@[::1]:9093" for IPv6).
// An empty value gives no voters.
func ParseVoters(v string) ([]Voter, error) {
	var out []Voter
	for _, it := range splitList(v) {
		idStr, addr, ok := strings.Cut(it, "@")
		if !ok {
			return nil, fmt.Errorf("%q: %q is not of the form id@host:port", v, it)
		}
		id, err := strconv.ParseInt(strings.TrimSpace(idStr), 10, 32)
		if err != nil || id < 0 {
			return nil, fmt.Errorf("%q: voter id %q is not a node id (an integer >= 0)", v, idStr)
		}
		host, port, err := splitHostPort(strings.TrimSpace(addr))
		if err != nil {
			return nil, fmt.Errorf("%q: voter %d: %v", v, id, err)
		}
		if host == "" || port == 0 {
			return nil, fmt.Errorf("%q: voter %d needs a host and a non-zero port to be reached at", v, id)
		}
		if slices.ContainsFunc(out, func(o Voter) bool { return o.ID == int32(id) }) {
			return nil, fmt.Errorf("%q: voter id %d appears twice", v, id)
		}
		out = append(out, Voter{ID: int32(id), Host: host, Port: port})
	}
	return out, nil
}

// ThrottledReplicas is a parsed leader.replication.throttled.replicas or
// follower.replication.throttled.replicas topic value.
type ThrottledReplicas struct {
	All      bool // "*": every replica of the topic
	Replicas []ThrottledReplica
}

// ThrottledReplica is one partition:broker entry of a throttled-replicas list.
type ThrottledReplica struct{ Partition, Broker int32 }

// Has reports whether the replica of partition on broker is throttled.
func (t ThrottledReplicas) Has(partition, broker int32) bool {
	return t.All || slices.Contains(t.Replicas, ThrottledReplica{partition, broker})
}

// ParseThrottledReplicas parses a throttled-replicas list as Kafka accepts
// it: "*" alone, or partition:broker entries; "" throttles nothing.
func ParseThrottledReplicas(v string) (ThrottledReplicas, error) {
	items := splitList(v)
	if len(items) == 1 && items[0] == "*" {
		return ThrottledReplicas{All: true}, nil
	}
	var t ThrottledReplicas
	for _, it := range items {
		p, b, _ := strings.Cut(it, ":")
		pn, perr := strconv.ParseInt(p, 10, 32)
		bn, berr := strconv.ParseInt(b, 10, 32)
		if !throttledReplicasPattern.MatchString(it) || perr != nil || berr != nil {
			return ThrottledReplicas{}, fmt.Errorf("%q: %q is not partition:broker; the value is \"*\" or a list of partition:broker", v, it)
		}
		t.Replicas = append(t.Replicas, ThrottledReplica{int32(pn), int32(bn)})
	}
	return t, nil
}

// ClusterMode reports whether this node is part of a multi-node cluster
// (controller.quorum.voters is set). Otherwise it is a single-node
// cluster: broker and its own controller, as `make run` starts it.
func (b *Broker) ClusterMode() bool { return len(b.Voters) > 0 }

// IsBroker reports whether this node serves clients and hosts replicas
// (process.roles has broker, or is unset).
func (b *Broker) IsBroker() bool {
	return len(b.ProcessRoles) == 0 || slices.Contains(b.ProcessRoles, "broker")
}

// IsController reports whether this node runs a controller (process.roles
// has controller, or is unset: a single node is its own controller).
func (b *Broker) IsController() bool {
	return len(b.ProcessRoles) == 0 || slices.Contains(b.ProcessRoles, "controller")
}

// ControllerListener returns the listener this node's controller serves
// the other nodes on: in cluster mode on a controller, its listener named
// first in controller.listener.names (the port its voter entry names).
// ok is false when the node serves no controller listener.
func (b *Broker) ControllerListener() (l Listener, ok bool) {
	if !b.ClusterMode() || !b.IsController() {
		return Listener{}, false
	}
	return b.firstControllerListener(b.ControllerListeners)
}

// ControllerListenerName is the listener name brokers use to reach the
// controllers at the voters' addresses: the first of
// controller.listener.names ("" when none is set).
func (b *Broker) ControllerListenerName() string {
	if len(b.ControllerListenerNames) == 0 {
		return ""
	}
	return b.ControllerListenerNames[0]
}

// InterBrokerListener returns the advertised endpoint other brokers reach
// this one at (inter.broker.listener.name); ok is false on a node without
// the broker role.
func (b *Broker) InterBrokerListener() (l Listener, ok bool) {
	return findListener(b.AdvertisedListeners, b.InterBrokerListenerName)
}

// Voter returns the controller.quorum.voters entry of node id.
func (b *Broker) Voter(id int32) (Voter, bool) {
	i := slices.IndexFunc(b.Voters, func(v Voter) bool { return v.ID == id })
	if i < 0 {
		return Voter{}, false
	}
	return b.Voters[i], true
}

func (b *Broker) firstControllerListener(ls []Listener) (Listener, bool) {
	for _, name := range b.ControllerListenerNames {
		if l, ok := findListener(ls, name); ok {
			return l, true
		}
	}
	return Listener{}, false
}

func findListener(ls []Listener, name string) (Listener, bool) {
	i := slices.IndexFunc(ls, func(l Listener) bool { return l.Name == name })
	if i < 0 {
		return Listener{}, false
	}
	return ls[i], true
}

func (b *Broker) isControllerName(name string) bool {
	return slices.Contains(b.ControllerListenerNames, name)
}

// buildCluster fills the cluster and replication fields and checks the
// rules Kafka's KafkaConfig checks between them, worded for the setting a
// user has to change. With no voters only the rules that hold for a
// single node apply, so a configuration that loaded before keeps loading.
func (b *Broker) buildCluster() error {
	b.ProcessRoles = splitList(b.Raw["process.roles"])
	b.Voters, _ = ParseVoters(b.Raw["controller.quorum.voters"])
	b.QuorumBootstrapServers = splitList(b.Raw["controller.quorum.bootstrap.servers"])
	b.BrokerRack = strings.TrimSpace(b.Raw["broker.rack"])
	b.BrokerHeartbeatIntervalMs = int32(b.int("broker.heartbeat.interval.ms"))
	b.BrokerSessionTimeoutMs = int32(b.int("broker.session.timeout.ms"))
	b.QuorumFetchTimeoutMs = b.int("controller.quorum.fetch.timeout.ms")
	b.MetadataCheckpointBytes = b.int("metadata.log.max.record.bytes.between.snapshots")
	b.MetadataCheckpointIntervalMs = b.int("metadata.log.max.snapshot.interval.ms")
	b.ControlledShutdownEnable = b.bool("controlled.shutdown.enable")
	b.ReplicaLagTimeMaxMs = b.int("replica.lag.time.max.ms")
	b.ReplicaFetchMaxBytes = int32(b.int("replica.fetch.max.bytes"))
	b.ReplicaFetchResponseMaxBytes = int32(b.int("replica.fetch.response.max.bytes"))
	b.ReplicaFetchWaitMaxMs = int32(b.int("replica.fetch.wait.max.ms"))
	b.ReplicaFetchMinBytes = int32(b.int("replica.fetch.min.bytes"))
	b.ReplicaFetchBackoffMs = int32(b.int("replica.fetch.backoff.ms"))
	b.NumReplicaFetchers = int32(b.int("num.replica.fetchers"))
	b.ReplicaHighWatermarkCheckpointIntervalMs = b.int("replica.high.watermark.checkpoint.interval.ms")
	b.ReplicaSelectorClass = strings.TrimSpace(b.Raw["replica.selector.class"])
	b.AutoLeaderRebalanceEnable = b.bool("auto.leader.rebalance.enable")
	b.LeaderImbalanceCheckIntervalSeconds = b.int("leader.imbalance.check.interval.seconds")
	b.LeaderImbalancePerBrokerPercentage = int32(b.int("leader.imbalance.per.broker.percentage"))
	b.LeaderReplicationThrottledRate = b.int("leader.replication.throttled.rate")
	b.FollowerReplicationThrottledRate = b.int("follower.replication.throttled.rate")

	if int64(b.ReplicaFetchWaitMaxMs) > b.ReplicaLagTimeMaxMs {
		return invalid("config: replica.fetch.wait.max.ms: %q is above replica.lag.time.max.ms %q; a follower waiting that long would drop out of the ISR",
			b.Raw["replica.fetch.wait.max.ms"], b.Raw["replica.lag.time.max.ms"])
	}
	if b.BrokerHeartbeatIntervalMs >= b.BrokerSessionTimeoutMs {
		return invalid("config: broker.heartbeat.interval.ms: %q is not below broker.session.timeout.ms %q; the controller would fence a broker between two heartbeats",
			b.Raw["broker.heartbeat.interval.ms"], b.Raw["broker.session.timeout.ms"])
	}
	if err := b.buildListeners(); err != nil {
		return err
	}
	if err := b.checkRoles(); err != nil {
		return err
	}
	if b.IsBroker() {
		return b.checkInterBroker()
	}
	return nil
}

// buildListeners reads the protocol map and splits listeners and
// advertised.listeners into broker and controller ones.
func (b *Broker) buildListeners() error {
	protocols, _ := parseProtocolMap(b.Raw["listener.security.protocol.map"])
	for _, n := range splitList(b.Raw["controller.listener.names"]) {
		b.ControllerListenerNames = append(b.ControllerListenerNames, strings.ToUpper(n))
	}
	for _, n := range b.ControllerListenerNames {
		// Kafka's rule: with the default map, controller listeners not in
		// it are PLAINTEXT; a configured map must name them.
		if _, ok := protocols[n]; !ok && !b.configured("listener.security.protocol.map") {
			protocols[n] = servedProtocol
		}
	}
	b.SecurityProtocolMap = protocols
	if err := checkServed(b.Raw["controller.listener.names"], namesOnly(b.ControllerListenerNames), protocols); err != nil {
		return invalid("config: controller.listener.names: %v", err)
	}

	all, _ := parseListenerList(b.Raw["listeners"])
	if err := checkServed(b.Raw["listeners"], all, protocols); err != nil {
		return invalid("config: listeners: %v", err)
	}
	b.Listeners, b.ControllerListeners = b.splitListeners(all)
	adv := all
	if b.has("advertised.listeners") {
		adv, _ = parseListenerList(b.Raw["advertised.listeners"])
		if err := checkServed(b.Raw["advertised.listeners"], adv, protocols); err != nil {
			return invalid("config: advertised.listeners: %v", err)
		}
		for _, a := range adv {
			if _, ok := findListener(all, a.Name); !ok {
				return invalid("config: advertised.listeners: %q names listener %s, which listeners does not define", b.Raw["advertised.listeners"], a.Name)
			}
		}
	}
	var advController []Listener
	b.AdvertisedListeners, advController = b.splitListeners(adv)
	// A controller advertises, per controller listener name, the
	// advertised.listeners entry if there is one, else the listener.
	b.AdvertisedControllerListeners = nil
	for _, n := range b.ControllerListenerNames {
		if l, ok := findListener(advController, n); ok {
			b.AdvertisedControllerListeners = append(b.AdvertisedControllerListeners, l)
		} else if l, ok := findListener(b.ControllerListeners, n); ok {
			b.AdvertisedControllerListeners = append(b.AdvertisedControllerListeners, l)
		}
	}
	if b.IsBroker() && len(b.Listeners) == 0 {
		return invalid("config: listeners: %q has no broker listener: every one is named in controller.listener.names %q",
			b.Raw["listeners"], b.Raw["controller.listener.names"])
	}
	return nil
}

// splitListeners separates broker listeners from controller listeners,
// keeping the order of each.
func (b *Broker) splitListeners(ls []Listener) (broker, controller []Listener) {
	for _, l := range ls {
		if b.isControllerName(l.Name) {
			controller = append(controller, l)
		} else {
			broker = append(broker, l)
		}
	}
	return broker, controller
}

func namesOnly(names []string) []Listener {
	out := make([]Listener, len(names))
	for i, n := range names {
		out[i] = Listener{Name: n}
	}
	return out
}

// checkRoles applies process.roles and the quorum settings to each other
// and to the listeners (KafkaConfig.validateValues, by role).
func (b *Broker) checkRoles() error {
	roles := b.Raw["process.roles"]
	both := b.IsBroker() && b.IsController()
	if !b.ClusterMode() {
		switch {
		case both:
			return nil
		case len(b.QuorumBootstrapServers) > 0:
			return invalid("config: process.roles: %q needs controller.quorum.voters; controller.quorum.bootstrap.servers alone is taken only on a single node that is its own controller (process.roles=broker,controller)", roles)
		default:
			return invalid("config: process.roles: %q needs controller.quorum.voters; without voters the node is a single-node cluster and must be both broker and controller", roles)
		}
	}
	voters := b.Raw["controller.quorum.voters"]
	if len(b.ProcessRoles) == 0 {
		return invalid("config: process.roles: must be set (broker, controller or broker,controller) when controller.quorum.voters is set")
	}
	if !b.configured("node.id") && !b.configured("broker.id") {
		return invalid("config: node.id: must be set when controller.quorum.voters is set; every node of a cluster needs its own id")
	}
	if len(b.ControllerListenerNames) == 0 {
		return invalid("config: controller.listener.names: must be set when controller.quorum.voters is set; it names the listener the controllers serve")
	}
	_, voter := b.Voter(b.NodeID)
	if !b.IsController() {
		if voter {
			return invalid("config: controller.quorum.voters: %q lists node.id %d, but process.roles %q runs no controller", voters, b.NodeID, roles)
		}
		if len(b.ControllerListeners) > 0 {
			return invalid("config: listeners: %q has controller listener %s, but process.roles %q runs no controller; remove it",
				b.Raw["listeners"], b.ControllerListeners[0].Name, roles)
		}
		if len(b.AdvertisedControllerListeners) > 0 {
			return invalid("config: advertised.listeners: %q has controller listener %s, but process.roles %q runs no controller; remove it",
				b.Raw["advertised.listeners"], b.AdvertisedControllerListeners[0].Name, roles)
		}
		return b.checkRoutable()
	}
	if !voter {
		return invalid("config: controller.quorum.voters: %q does not list node.id %d, which process.roles %q makes a controller", voters, b.NodeID, roles)
	}
	for _, n := range b.ControllerListenerNames {
		if _, ok := findListener(b.ControllerListeners, n); !ok {
			return invalid("config: listeners: %q has no %s listener; a controller listens on every listener controller.listener.names names", b.Raw["listeners"], n)
		}
	}
	if !b.IsBroker() && len(b.Listeners) > 0 {
		return invalid("config: listeners: %q has broker listener %s, but process.roles %q serves only controller listeners",
			b.Raw["listeners"], b.Listeners[0].Name, roles)
	}
	l, _ := b.ControllerListener()
	if v, _ := b.Voter(b.NodeID); v.Port != l.Port {
		return invalid("config: controller.quorum.voters: voter %s names port %d, but this node's controller listener %s is on port %d",
			v, v.Port, l, l.Port)
	}
	return b.checkRoutable()
}

// checkRoutable refuses, in cluster mode, an advertised address no other
// node can connect to (Kafka's rule for 0.0.0.0, extended to ::).
func (b *Broker) checkRoutable() error {
	for _, l := range append(slices.Clip(b.AdvertisedListeners), b.AdvertisedControllerListeners...) {
		if ip := net.ParseIP(l.Host); ip != nil && ip.IsUnspecified() {
			return invalid("config: advertised.listeners: %s is the non-routable address %s; other nodes of the cluster cannot reach it (set advertised.listeners to this node's address)", l, l.Host)
		}
	}
	return nil
}

// checkInterBroker checks inter.broker.listener.name on a broker: a
// mapped, advertised broker listener.
func (b *Broker) checkInterBroker() error {
	name := strings.ToUpper(strings.TrimSpace(b.Raw["inter.broker.listener.name"]))
	if name == "" {
		name = servedProtocol // Kafka: security.inter.broker.protocol, PLAINTEXT
	}
	b.InterBrokerListenerName = name
	var names []string
	for _, l := range b.AdvertisedListeners {
		names = append(names, l.Name)
	}
	switch {
	case b.isControllerName(name):
		return invalid("config: inter.broker.listener.name: %s is a controller listener (controller.listener.names); brokers replicate over a broker listener", name)
	case b.SecurityProtocolMap[name] == "":
		return invalid("config: inter.broker.listener.name: %s is not in listener.security.protocol.map", name)
	case !slices.Contains(names, name):
		return invalid("config: inter.broker.listener.name: %s is not one of the advertised broker listeners (%s)", name, strings.Join(names, ", "))
	}
	return nil
}

// CheckLocalCluster checks the configurations of nodes meant to run as one
// cluster on one machine (the files `make run-cluster` starts) against
// each other: all in cluster mode with the same voters, distinct node
// ids, every voter among them a controller, no two binding the same port
// (on any host: a dev cluster should not depend on 127.0.0.2) and no two
// sharing a log directory. Each node's own rules were checked
// by Load.
func CheckLocalCluster(nodes ...*Broker) error {
	ids := map[int32]bool{}
	binds := map[int]string{} // port -> "node N listener"
	dirs := map[string]int32{}
	for _, n := range nodes {
		if !n.ClusterMode() {
			return invalid("config: node.id %d: controller.quorum.voters is not set, so it would start as a cluster of its own", n.NodeID)
		}
		if !slices.Equal(n.Voters, nodes[0].Voters) {
			return invalid("config: node.id %d: controller.quorum.voters %q differs from node.id %d's %q",
				n.NodeID, n.Raw["controller.quorum.voters"], nodes[0].NodeID, nodes[0].Raw["controller.quorum.voters"])
		}
		if ids[n.NodeID] {
			return invalid("config: node.id %d is used by two nodes", n.NodeID)
		}
		ids[n.NodeID] = true
		if _, voter := n.Voter(n.NodeID); voter != n.IsController() {
			return invalid("config: node.id %d: process.roles %q and controller.quorum.voters disagree", n.NodeID, n.Raw["process.roles"])
		}
		for _, a := range n.bindAddrs() {
			_, port, _ := splitHostPort(a.addr)
			if port == 0 {
				continue
			}
			if other, ok := binds[port]; ok {
				return invalid("config: node.id %d: %s (%s) uses port %d, as %s does", n.NodeID, a.what, a.addr, port, other)
			}
			binds[port] = fmt.Sprintf("node.id %d's %s", n.NodeID, a.what)
		}
		for _, d := range n.LogDirs {
			d = filepath.Clean(d)
			if other, ok := dirs[d]; ok {
				return invalid("config: node.id %d: log.dirs %s is also node.id %d's", n.NodeID, d, other)
			}
			dirs[d] = n.NodeID
		}
	}
	return nil
}

type bindAddr struct{ what, addr string }

// bindAddrs lists the addresses the node listens on.
func (b *Broker) bindAddrs() []bindAddr {
	var out []bindAddr
	for _, l := range b.Listeners {
		out = append(out, bindAddr{"listener " + l.Name, l.Addr()})
	}
	if l, ok := b.ControllerListener(); ok {
		out = append(out, bindAddr{"listener " + l.Name, l.Addr()})
	}
	if b.AdminListener != "" {
		out = append(out, bindAddr{"admin.listener", b.AdminListener})
	}
	return out
}
