package broker

import (
	"context"
	"fmt"
	"hash/crc32"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/testkit"
)

func TestCreateTopicsValidation(t *testing.T) {
	tb := startTestBroker(t, "num.partitions=3")
	c := tb.raw(t)
	topic := func(name string, partitions int32, rf int16, configs ...string) kmsg.CreateTopicsRequestTopic {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, rf
		for i := 0; i+1 < len(configs); i += 2 {
			rt.Configs = append(rt.Configs, kmsg.CreateTopicsRequestTopicConfig{Name: configs[i], Value: kmsg.StringPtr(configs[i+1])})
		}
		return rt
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Topics = []kmsg.CreateTopicsRequestTopic{
		topic("ok", -1, -1, "retention.ms", "1000"),
		topic("bad name!", 1, 1),
		topic("rf3", 1, 3),
		topic("zero", 0, 1),
		topic("badcfg", 1, 1, "retention.ms", "soon"),
		topic("unknowncfg", 1, 1, "no.such.setting", "1"),
		topic("dup", 1, 1),
		topic("dup", 1, 1),
	}
	resp := do[*kmsg.CreateTopicsResponse](c, req, 7)
	want := map[string]int16{
		"ok": 0, "bad name!": kerr.InvalidTopicException.Code, "rf3": kerr.InvalidReplicationFactor.Code,
		"zero": kerr.InvalidPartitions.Code, "badcfg": kerr.InvalidConfig.Code, "unknowncfg": kerr.InvalidConfig.Code,
		"dup": kerr.InvalidRequest.Code,
	}
	for _, st := range resp.Topics {
		if st.ErrorCode != want[st.Topic] {
			t.Errorf("%s: error %d, want %d (%v)", st.Topic, st.ErrorCode, want[st.Topic], strOrEmpty(st.ErrorMessage))
		}
		// A refused config names the setting and the reason, not only
		// Kafka's generic "Configuration is invalid".
		for topic, want := range map[string][]string{"badcfg": {"retention.ms", `"soon" is not an integer`}, "unknowncfg": {`unknown topic setting "no.such.setting"`}} {
			if st.Topic != topic {
				continue
			}
			for _, w := range want {
				if !strings.Contains(strOrEmpty(st.ErrorMessage), w) {
					t.Errorf("%s: message %q lacks %q", topic, strOrEmpty(st.ErrorMessage), w)
				}
			}
		}
		if st.Topic == "ok" && (st.NumPartitions != 3 || st.ReplicationFactor != 1 || st.TopicID == [16]byte{}) {
			t.Errorf("ok: partitions %d rf %d id %x", st.NumPartitions, st.ReplicationFactor, st.TopicID)
		}
	}
	// Again: exists. Validate-only creates nothing.
	req.Topics = []kmsg.CreateTopicsRequestTopic{topic("ok", 1, 1)}
	if resp = do[*kmsg.CreateTopicsResponse](c, req, 7); resp.Topics[0].ErrorCode != kerr.TopicAlreadyExists.Code {
		t.Fatalf("recreate: %d", resp.Topics[0].ErrorCode)
	}
	req.Topics, req.ValidateOnly = []kmsg.CreateTopicsRequestTopic{topic("dry", 2, 1)}, true
	if resp = do[*kmsg.CreateTopicsResponse](c, req, 7); resp.Topics[0].ErrorCode != 0 || tb.topics.get("dry") != nil {
		t.Fatalf("validate only: err %d, created %v", resp.Topics[0].ErrorCode, tb.topics.get("dry") != nil)
	}
}

func TestMetadataVersionsAndAutoCreate(t *testing.T) {
	tb := startTestBroker(t, "num.partitions=2")
	tb.createTopic(t, "a", 1, nil)
	c := tb.raw(t)
	// v0: an empty list means every topic.
	if resp := do[*kmsg.MetadataResponse](c, kmsg.NewPtrMetadataRequest(), 0); len(resp.Topics) != 1 {
		t.Fatalf("v0 all topics: %d", len(resp.Topics))
	}
	// v1+: an empty list means none, null means all.
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{}
	if resp := do[*kmsg.MetadataResponse](c, req, 1); len(resp.Topics) != 0 {
		t.Fatalf("v1 empty list: %d topics", len(resp.Topics))
	}
	// Auto-creation on a metadata request that allows it.
	req.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("auto")}}
	req.AllowAutoTopicCreation = true
	resp := do[*kmsg.MetadataResponse](c, req, 12)
	if mt := resp.Topics[0]; mt.ErrorCode != 0 || len(mt.Partitions) != 2 || mt.TopicID == [16]byte{} {
		t.Fatalf("auto-created: %+v", mt)
	}
	req.Topics[0].Topic, req.AllowAutoTopicCreation = kmsg.StringPtr("noauto"), false
	if resp = do[*kmsg.MetadataResponse](c, req, 12); resp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("no auto-create: %d", resp.Topics[0].ErrorCode)
	}
	// By topic id (v12+).
	req.Topics = []kmsg.MetadataRequestTopic{{TopicID: topicID(t, tb, "a")}}
	if resp = do[*kmsg.MetadataResponse](c, req, 12); strOrEmpty(resp.Topics[0].Topic) != "a" {
		t.Fatalf("by id: %+v", resp.Topics[0])
	}
	if b := resp.Brokers[0]; b.Host != "127.0.0.1" || b.Port == 0 || b.NodeID != 0 || resp.ClusterID == nil {
		t.Fatalf("broker entry %+v cluster %v", b, resp.ClusterID)
	}
}

func TestTopicConfigsDescribeAndAlter(t *testing.T) {
	tb := startTestBroker(t)
	tb.createTopic(t, "c", 1, map[string]*string{"retention.ms": kmsg.StringPtr("60000")})
	adm := tb.admin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	value := func(name string) (string, kmsg.ConfigSource) {
		rcs, err := adm.DescribeTopicConfigs(ctx, "c")
		if err != nil {
			t.Fatal(err)
		}
		rc, _ := rcs.On("c", nil)
		for _, cfg := range rc.Configs {
			if cfg.Key == name {
				return cfg.MaybeValue(), cfg.Source
			}
		}
		t.Fatalf("no %s in DescribeConfigs", name)
		return "", 0
	}
	if v, src := value("retention.ms"); v != "60000" || src != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("retention.ms = %s from %v", v, src)
	}
	if v, src := value("segment.bytes"); v != "1073741824" || src != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("segment.bytes = %s from %v", v, src)
	}
	// Incremental: SET one, DELETE another.
	c := tb.raw(t)
	inc := kmsg.NewPtrIncrementalAlterConfigsRequest()
	inc.Resources = []kmsg.IncrementalAlterConfigsRequestResource{{
		ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "c",
		Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{
			{Name: "max.message.bytes", Op: kmsg.IncrementalAlterConfigOpSet, Value: kmsg.StringPtr("2000")},
			{Name: "retention.ms", Op: kmsg.IncrementalAlterConfigOpDelete},
		},
	}}
	if r := do[*kmsg.IncrementalAlterConfigsResponse](c, inc, 1); r.Resources[0].ErrorCode != 0 {
		t.Fatalf("incremental: %d %v", r.Resources[0].ErrorCode, strOrEmpty(r.Resources[0].ErrorMessage))
	}
	if v, _ := value("max.message.bytes"); v != "2000" {
		t.Fatalf("max.message.bytes = %s", v)
	}
	if _, src := value("retention.ms"); src == kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatal("retention.ms override survived DELETE")
	}
	// The new limit applies to produce at once.
	pr := kmsg.NewPtrProduceRequest()
	pr.Acks = 1
	pr.Topics = []kmsg.ProduceRequestTopic{{Topic: "c", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: testBatch(3000)}}}}
	if r := do[*kmsg.ProduceResponse](c, pr, 7); r.Topics[0].Partitions[0].ErrorCode != kerr.MessageTooLarge.Code {
		t.Fatalf("3000-byte batch over max.message.bytes=2000: %d", r.Topics[0].Partitions[0].ErrorCode)
	}
	// Invalid values and APPEND to a non-list are rejected, nothing changes.
	inc.Resources[0].Configs = []kmsg.IncrementalAlterConfigsRequestResourceConfig{
		{Name: "max.message.bytes", Op: kmsg.IncrementalAlterConfigOpSet, Value: kmsg.StringPtr("big")},
	}
	if r := do[*kmsg.IncrementalAlterConfigsResponse](c, inc, 1); r.Resources[0].ErrorCode != kerr.InvalidConfig.Code {
		t.Fatalf("bad value: %d", r.Resources[0].ErrorCode)
	}
	inc.Resources[0].Configs[0].Op = kmsg.IncrementalAlterConfigOpAppend
	inc.Resources[0].Configs[0].Value = kmsg.StringPtr("5")
	if r := do[*kmsg.IncrementalAlterConfigsResponse](c, inc, 1); r.Resources[0].ErrorCode != kerr.InvalidConfig.Code {
		t.Fatalf("append to a number: %d", r.Resources[0].ErrorCode)
	}
	if v, _ := value("max.message.bytes"); v != "2000" {
		t.Fatalf("failed alter changed max.message.bytes to %s", v)
	}
	// Legacy AlterConfigs replaces the whole set.
	alt := kmsg.NewPtrAlterConfigsRequest()
	alt.Resources = []kmsg.AlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "c",
		Configs: []kmsg.AlterConfigsRequestResourceConfig{{Name: "cleanup.policy", Value: kmsg.StringPtr("delete")}}}}
	if r := do[*kmsg.AlterConfigsResponse](c, alt, 2); r.Resources[0].ErrorCode != 0 {
		t.Fatalf("alter: %d", r.Resources[0].ErrorCode)
	}
	if _, src := value("max.message.bytes"); src == kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatal("legacy AlterConfigs kept an override it did not name")
	}
	// Broker settings are static.
	alt.Resources[0].ResourceType, alt.Resources[0].ResourceName = kmsg.ConfigResourceTypeBroker, "0"
	if r := do[*kmsg.AlterConfigsResponse](c, alt, 2); r.Resources[0].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("broker alter: %d", r.Resources[0].ErrorCode)
	}
	// Overrides survive a restart.
	dir := tb.dir
	_ = tb.Shutdown(context.Background())
	tb2 := startTestBrokerIn(t, dir)
	if tp := tb2.topics.get("c"); tp == nil || tp.cfg.CleanupPolicy != "delete" {
		t.Fatal("topic or override lost across restart")
	}
}

func TestDeleteAndGrowTopics(t *testing.T) {
	tb := startTestBroker(t)
	tb.createTopic(t, "d", 1, nil)
	tb.createTopic(t, "g", 1, nil)
	fill(t, tb, "d", 1, 10, 10)
	c := tb.raw(t)

	cp := kmsg.NewPtrCreatePartitionsRequest()
	cp.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: "g", Count: 4}, {Topic: "missing", Count: 2}}
	r := do[*kmsg.CreatePartitionsResponse](c, cp, 3)
	if r.Topics[0].ErrorCode != 0 || r.Topics[1].ErrorCode != kerr.UnknownTopicOrPartition.Code || len(tb.topics.get("g").parts) != 4 {
		t.Fatalf("create partitions: %+v", r.Topics)
	}
	cp.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: "g", Count: 2}}
	if r = do[*kmsg.CreatePartitionsResponse](c, cp, 3); r.Topics[0].ErrorCode != kerr.InvalidPartitions.Code {
		t.Fatalf("shrink: %d", r.Topics[0].ErrorCode)
	}

	id := topicID(t, tb, "d")
	dt := kmsg.NewPtrDeleteTopicsRequest()
	dt.Topics = []kmsg.DeleteTopicsRequestTopic{{TopicID: id}, {Topic: kmsg.StringPtr("missing")}}
	dr := do[*kmsg.DeleteTopicsResponse](c, dt, 6)
	if dr.Topics[0].ErrorCode != 0 || strOrEmpty(dr.Topics[0].Topic) != "d" || dr.Topics[1].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("delete: %+v", dr.Topics)
	}
	// Recreated under the same name, the topic starts empty with a new id.
	tb.createTopic(t, "d", 1, nil)
	if p := tb.topics.get("d").parts[0]; p.LogEndOffset() != 0 || topicID(t, tb, "d") == id {
		t.Fatalf("recreated topic has end offset %d", p.LogEndOffset())
	}
	// v0 deletes by name.
	dt0 := kmsg.NewPtrDeleteTopicsRequest()
	dt0.TopicNames = []string{"g"}
	if dr = do[*kmsg.DeleteTopicsResponse](c, dt0, 0); dr.Topics[0].ErrorCode != 0 || tb.topics.get("g") != nil {
		t.Fatalf("v0 delete: %+v", dr.Topics)
	}
}

func TestOffsetsAPIs(t *testing.T) {
	tb := startTestBroker(t)
	tb.createTopic(t, "o", 1, nil)
	fill(t, tb, "o", 1, 20, 10)
	c := tb.raw(t)

	list := func(ts int64, version int16) kmsg.ListOffsetsResponseTopicPartition {
		req := kmsg.NewPtrListOffsetsRequest()
		req.ReplicaID = -1
		req.Topics = []kmsg.ListOffsetsRequestTopic{{Topic: "o", Partitions: []kmsg.ListOffsetsRequestTopicPartition{{Partition: 0, Timestamp: ts, CurrentLeaderEpoch: -1}}}}
		return do[*kmsg.ListOffsetsResponse](c, req, version).Topics[0].Partitions[0]
	}
	if p := list(-1, 1); p.Offset != 20 {
		t.Fatalf("latest v1: %d", p.Offset)
	}
	if p := list(-2, 11); p.Offset != 0 || p.LeaderEpoch != 0 {
		t.Fatalf("earliest: %+v", p)
	}
	if p := list(-3, 7); p.Offset < 0 || p.Timestamp <= 0 {
		t.Fatalf("max timestamp: %+v", p)
	}
	if p := list(time.Now().Add(time.Hour).UnixMilli(), 5); p.Offset != -1 {
		t.Fatalf("future timestamp: %+v", p)
	}

	dr := kmsg.NewPtrDeleteRecordsRequest()
	dr.Topics = []kmsg.DeleteRecordsRequestTopic{{Topic: "o", Partitions: []kmsg.DeleteRecordsRequestTopicPartition{{Partition: 0, Offset: 5}}}}
	if r := do[*kmsg.DeleteRecordsResponse](c, dr, 2); r.Topics[0].Partitions[0].ErrorCode != 0 || r.Topics[0].Partitions[0].LowWatermark != 5 {
		t.Fatalf("delete records: %+v", r.Topics[0].Partitions[0])
	}
	if p := list(-2, 11); p.Offset != 5 {
		t.Fatalf("earliest after DeleteRecords: %d", p.Offset)
	}
	dr.Topics[0].Partitions[0].Offset = 99
	if r := do[*kmsg.DeleteRecordsResponse](c, dr, 2); r.Topics[0].Partitions[0].ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Fatalf("delete beyond the high watermark: %d", r.Topics[0].Partitions[0].ErrorCode)
	}
	resp := do[*kmsg.FetchResponse](c, fetchReq("o", [16]byte{}, 2), 11)
	if resp.Topics[0].Partitions[0].ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Fatal("fetch below the log start offset served data")
	}

	oe := kmsg.NewPtrOffsetForLeaderEpochRequest()
	oe.ReplicaID = -1
	oe.Topics = []kmsg.OffsetForLeaderEpochRequestTopic{{Topic: "o", Partitions: []kmsg.OffsetForLeaderEpochRequestTopicPartition{{Partition: 0, CurrentLeaderEpoch: -1, LeaderEpoch: 0}}}}
	if p := do[*kmsg.OffsetForLeaderEpochResponse](c, oe, 4).Topics[0].Partitions[0]; p.ErrorCode != 0 || p.LeaderEpoch != 0 || p.EndOffset != 20 {
		t.Fatalf("offset for leader epoch: %+v", p)
	}
}

func TestProduceRejectsBadBatchesWritingNothing(t *testing.T) {
	forEachEngine(t, testProduceRejectsBadBatchesWritingNothing)
}

func testProduceRejectsBadBatchesWritingNothing(t *testing.T, engine string) {
	tb := startTestBroker(t, "netio.engine="+engine)
	tb.createTopic(t, "p", 1, nil)
	c := tb.raw(t)
	produce := func(records []byte, acks int16) int16 {
		pr := kmsg.NewPtrProduceRequest()
		pr.Acks = acks
		pr.Topics = []kmsg.ProduceRequestTopic{{Topic: "p", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: records}}}}
		return do[*kmsg.ProduceResponse](c, pr, 8).Topics[0].Partitions[0].ErrorCode
	}
	good := testBatch(100)
	badCRC := append([]byte(nil), good...)
	badCRC[len(badCRC)-1] ^= 0xff
	twoBatches := append(append([]byte(nil), good...), badCRC...)
	for name, tc := range map[string]struct {
		records []byte
		want    int16
	}{
		"bad crc":                 {badCRC, kerr.CorruptMessage.Code},
		"good then bad":           {twoBatches, kerr.CorruptMessage.Code},
		"truncated":               {good[:len(good)-3], kerr.CorruptMessage.Code},
		"empty":                   {nil, kerr.CorruptMessage.Code},
		"over message.max.bytes":  {testBatch(2 << 20), kerr.MessageTooLarge.Code},
		"acks=2 is not a setting": {good, kerr.InvalidRequiredAcks.Code},
	} {
		acks := int16(1)
		if name == "acks=2 is not a setting" {
			acks = 2
		}
		if code := produce(tc.records, acks); code != tc.want {
			t.Errorf("%s: error %d, want %d", name, code, tc.want)
		}
	}
	if end := tb.topics.get("p").parts[0].LogEndOffset(); end != 0 {
		t.Fatalf("rejected produces wrote %d records", end)
	}
	if code := produce(good, -1); code != 0 {
		t.Fatalf("good batch: %d", code)
	}
}

// testBatch is a valid uncompressed batch with one record of about size bytes.
func testBatch(size int) []byte {
	return testkit.Batch{FirstTimestamp: time.Now().UnixMilli(), Records: []testkit.Record{{Value: make([]byte, size)}}}.Encode()
}

// acks=0 gets no response; a failed acks=0 produce closes the connection,
// the only way to tell such a client.
func TestAcksZero(t *testing.T) { forEachEngine(t, testAcksZero) }

func testAcksZero(t *testing.T, engine string) {
	tb := startTestBroker(t, "netio.engine="+engine)
	tb.createTopic(t, "z0", 1, nil)
	c := tb.raw(t)
	pr := kmsg.NewPtrProduceRequest()
	pr.Acks = 0
	pr.Topics = []kmsg.ProduceRequestTopic{{Topic: "z0", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: testBatch(10)}}}}
	pr.SetVersion(7)
	c.corr++
	if _, err := c.nc.Write(frameOf(c, pr)); err != nil {
		t.Fatal(err)
	}
	// The next request's response is the next thing on the wire.
	if av := do[*kmsg.ApiVersionsResponse](c, kmsg.NewPtrApiVersionsRequest(), 3); av.ErrorCode != 0 {
		t.Fatal("ApiVersions after acks=0 produce failed")
	}
	if end := tb.topics.get("z0").parts[0].LogEndOffset(); end != 1 {
		t.Fatalf("acks=0 produce wrote %d records", end)
	}
	pr.Topics[0].Topic = "missing"
	c.corr++
	if _, err := c.nc.Write(frameOf(c, pr)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.fr.Next(); err == nil {
		t.Fatal("a failed acks=0 produce did not close the connection")
	}
}

func TestFindCoordinator(t *testing.T) {
	tb := startTestBroker(t)
	c := tb.raw(t)
	port := int32(tb.Addr().(*net.TCPAddr).Port)
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorKey = "g"
	if r := do[*kmsg.FindCoordinatorResponse](c, req, 0); r.ErrorCode != 0 || r.NodeID != 0 || r.Port != port {
		t.Fatalf("v0: %+v", r)
	}
	req.CoordinatorKeys, req.CoordinatorType = []string{"a", "b"}, coordinatorTransaction
	r := do[*kmsg.FindCoordinatorResponse](c, req, 4)
	if len(r.Coordinators) != 2 || r.Coordinators[1].Key != "b" || r.Coordinators[1].Port != port || r.Coordinators[0].ErrorCode != 0 {
		t.Fatalf("v4 batched: %+v", r.Coordinators)
	}
	req.CoordinatorType = 7
	if r = do[*kmsg.FindCoordinatorResponse](c, req, 6); r.Coordinators[0].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("unknown key type: %+v", r.Coordinators)
	}
}

// legacyV1Set is a magic-1 message set of uncompressed messages, as Produce
// v0-v2 clients send.
func legacyV1Set(ts int64, values ...string) []byte {
	var set []byte
	for i, v := range values {
		m := kmsg.MessageV1{Magic: 1, Timestamp: ts + int64(i), Key: []byte(fmt.Sprint("k", i)), Value: []byte(v)}
		body := m.AppendTo(nil)[16:] // without offset, size and crc
		m.CRC = int32(crc32.ChecksumIEEE(body))
		m.MessageSize = int32(len(body) + 4)
		m.Offset = int64(i)
		set = m.AppendTo(set)
	}
	return set
}

// Produce v0-v2 carry legacy message sets: they are stored as RecordBatch v2
// and read back like any other records.
func TestProduceLegacyMessageFormat(t *testing.T) {
	tb := startTestBroker(t)
	tb.createTopic(t, "legacy", 1, nil)
	c := tb.raw(t)
	ts := time.Now().Add(-time.Minute).UnixMilli()
	pr := kmsg.NewPtrProduceRequest()
	pr.Acks = 1
	pr.Topics = []kmsg.ProduceRequestTopic{{Topic: "legacy", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: legacyV1Set(ts, "a", "b", "c")}}}}
	for _, v := range []int16{0, 2} {
		if p := do[*kmsg.ProduceResponse](c, pr, v).Topics[0].Partitions[0]; p.ErrorCode != 0 {
			t.Fatalf("v%d: error %d", v, p.ErrorCode)
		}
	}
	// A legacy set in a v3+ request, or a v2 batch in a v2 request, is refused.
	if p := do[*kmsg.ProduceResponse](c, pr, 3).Topics[0].Partitions[0]; p.ErrorCode == 0 {
		t.Fatal("v3 accepted a legacy message set")
	}
	pr.Topics[0].Partitions[0].Records = testBatch(10)
	if p := do[*kmsg.ProduceResponse](c, pr, 2).Topics[0].Partitions[0]; p.ErrorCode != kerr.InvalidRecord.Code {
		t.Fatalf("v2 with a v2 batch: error %d", p.ErrorCode)
	}
	cl := tb.client(t, kgo.ConsumeTopics("legacy"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []*kgo.Record
	for len(got) < 6 {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		got = append(got, fs.Records()...)
	}
	for i, r := range got {
		if want := []string{"a", "b", "c"}[i%3]; string(r.Value) != want || r.Offset != int64(i) || r.Timestamp.UnixMilli() != ts+int64(i%3) {
			t.Fatalf("record %d: offset %d value %q ts %d", i, r.Offset, r.Value, r.Timestamp.UnixMilli())
		}
	}
}
