package broker

import (
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/coordinator"
)

// This file is what clients may and may not do to internal topics. Their
// data is the broker's own (for __consumer_offsets, every group's committed
// offsets), so a client must not be able to create them in a shape the
// coordinator does not expect, delete them, trim them, or change a setting
// that decides which of their records are kept.

// refusal is a request turned down by policy. It carries its Kafka code
// (errorCode finds it through Unwrap) and a message that reads on its own,
// without the code's generic description in front of it.
type refusal struct {
	code *kerr.Error
	msg  string
}

func refuse(code *kerr.Error, format string, args ...any) error {
	return &refusal{code: code, msg: fmt.Sprintf(format, args...)}
}

func (r *refusal) Error() string { return r.msg }
func (r *refusal) Unwrap() error { return r.code }

// reservedTopic reports names only the broker may create: the internal
// topics, and the other internal names Kafka reserves (KRaft's metadata log,
// share-group state) so a client cannot take them before Sluice uses them.
func reservedTopic(name string) bool {
	return isInternalTopic(name) || name == "__cluster_metadata" || name == "__share_group_state"
}

// clientMayCreate refuses client creation of internal topics, as Kafka
// refuses __cluster_metadata. A client-made __consumer_offsets with one
// partition and cleanup.policy=delete would be adopted by the coordinator
// and its retention would erase committed offsets.
func clientMayCreate(name string) error {
	if reservedTopic(name) {
		return refuse(kerr.InvalidRequest, "Creation of internal topic %s is prohibited: the broker creates it itself", name)
	}
	return nil
}

// clientMayDelete refuses deleting an internal topic, which would drop every
// group's committed offsets; Kafka's own tool refuses it too.
func clientMayDelete(name string) error {
	return refuseIfInternal(name, kerr.InvalidTopicException, "topic %s is internal and cannot be deleted")
}

// clientMayGrow refuses adding partitions to an internal topic: the
// coordinator places a group by hashing its id over the partition count, so
// a new count moves groups away from the partition holding their offsets.
func clientMayGrow(name string) error {
	return refuseIfInternal(name, kerr.InvalidRequest, "the partition count of internal topic %s is fixed when the broker creates it (offsets.topic.num.partitions)")
}

// clientMayTrim refuses DeleteRecords on an internal topic, which would
// erase committed offsets below the new start, as Kafka refuses it.
func clientMayTrim(name string) error {
	return refuseIfInternal(name, kerr.InvalidTopicException, "records of internal topic %s cannot be deleted")
}

// refuseIfInternal answers code with format (given the topic name) when name
// is an internal topic.
func refuseIfInternal(name string, code *kerr.Error, format string) error {
	if !isInternalTopic(name) {
		return nil
	}
	return refuse(code, format, name)
}

// internalTopicTunables are the settings a client may change on an internal
// topic: they decide when data is fsynced and how files are laid out, never
// whether a record is kept, accepted or readable. Everything else
// (cleanup.policy, retention.*, max.message.bytes, the timestamp and
// compaction settings, and any setting added later) stays as the broker set
// it. An allow-list, so that a new setting is protected until judged safe.
var internalTopicTunables = map[string]bool{
	"flush.messages":       true,
	"flush.ms":             true,
	"index.interval.bytes": true,
	"segment.index.bytes":  true,
	"segment.bytes":        true,
	"segment.ms":           true,
	"segment.jitter.ms":    true,
	"preallocate":          true,
	"file.delete.delay.ms": true,
}

// clientMayReconfigure refuses a change of an internal topic's overrides
// from cur to next that touches a protected setting: setting, changing or
// removing it alike (AlterConfigs drops every override it does not name, so
// leaving cleanup.policy out would turn compaction off). The one change
// allowed is back to what the broker itself gives the topic, so an operator
// can repair a topic a client damaged before this policy existed.
func clientMayReconfigure(name string, cur, next map[string]string) error {
	if !isInternalTopic(name) {
		return nil
	}
	own := internalTopicConfigs[name]
	var touched []string
	for _, m := range []map[string]string{cur, next} {
		for k := range m {
			if internalTopicTunables[k] || sameSetting(cur, next, k) || own != nil && sameSetting(own, next, k) {
				continue
			}
			touched = append(touched, k)
		}
	}
	if len(touched) == 0 {
		return nil
	}
	sort.Strings(touched)
	return refuse(kerr.PolicyViolation, "topic %s is internal: clients may not change %s, which decides which of its records are kept (committed offsets); only %s may be tuned",
		name, touched[0], tunableNames())
}

// internalTopicConfigs are the overrides the broker creates each internal
// topic with.
var internalTopicConfigs = map[string]map[string]string{
	coordinator.OffsetsTopic: offsetsTopicConfigs,
}

// sameSetting reports whether a and b agree on k, both on its value and on
// whether it is overridden at all.
func sameSetting(a, b map[string]string, k string) bool {
	va, oka := a[k]
	vb, okb := b[k]
	return va == vb && oka == okb
}

func tunableNames() string {
	names := make([]string, 0, len(internalTopicTunables))
	for n := range internalTopicTunables {
		names = append(names, n)
	}
	sort.Strings(names)
	return fmt.Sprint(names)
}

// logRefusal leaves a trace of a refused attempt on an internal topic, so an
// operator can find the client that tried.
func (b *Broker) logRefusal(api, topic string, err error) {
	b.logger.Warn("request on an internal topic refused", "api", api, "topic", topic, "reason", err.Error())
}
