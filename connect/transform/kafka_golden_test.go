package transform

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-io/sluice/connect/convert"
	"github.com/sluice-io/sluice/connect/data"
)

// TestSMTsAsKafka replays testdata/kafka_smt.golden, the results of
// Kafka's own SMTs on the same records: each transform here must give the
// same topic, partition, timestamp, key, value and headers (compared as
// JsonConverter envelopes, maps order-insensitively), or fail where
// Kafka failed.
func TestSMTsAsKafka(t *testing.T) {
	raw, err := os.ReadFile("testdata/kafka_smt.golden")
	if err != nil {
		t.Fatal(err)
	}
	conv, err := convert.New("JsonConverter", nil, false)
	if err != nil {
		t.Fatal(err)
	}
	read := func(s string) (*data.Schema, any) {
		if s == "null" {
			return nil, nil
		}
		sch, v, err := conv.ToConnect("t", []byte(s))
		if err != nil {
			t.Fatalf("reading %s: %v", s, err)
		}
		return sch, v
	}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		in, want, _ := strings.Cut(line, "\t=>\t")
		f := strings.Split(in, "\t")
		kv := []string{"transforms=x", "transforms.x.type=org.apache.kafka.connect.transforms." + f[0]}
		if f[1] != "" {
			for _, p := range strings.Split(f[1], ";") {
				kv = append(kv, "transforms.x."+p)
			}
		}
		chain, err := NewChain(cfg(kv...))
		if err != nil {
			t.Errorf("%s %s: %v", f[0], f[1], err)
			continue
		}
		r := &data.Record{Topic: f[2], Partition: -1, Timestamp: -1, KafkaOffset: -1}
		if n, err := strconv.Atoi(f[3]); err == nil {
			r.Partition = int32(n)
		}
		if n, err := strconv.ParseInt(f[4], 10, 64); err == nil {
			r.Timestamp = n
		}
		r.KeySchema, r.Key = read(f[5])
		r.ValueSchema, r.Value = read(f[6])
		if f[7] == "sink" {
			r.OriginalTopic, r.OriginalPartition, r.KafkaOffset = r.Topic, r.Partition, 42
		}
		if len(f) > 8 && f[8] != "" {
			for _, h := range strings.Split(f[8], ";") {
				k, v, _ := strings.Cut(h, "=")
				r.Headers = append(r.Headers, data.Header{Key: k, Schema: data.StringSchema, Value: v})
			}
		}
		got := render(t, conv, chain, r)
		if !sameResult(t, got, want) {
			t.Errorf("%s %s on %s:\n got  %s\n want %s", f[0], f[1], f[6], got, want)
		}
	}
}

func render(t *testing.T, conv convert.Converter, chain *Chain, r *data.Record) string {
	t.Helper()
	out, err := chain.Apply(r)
	if err != nil {
		return "ERR"
	}
	if out == nil {
		return "DROPPED"
	}
	orNull := func(b []byte) string {
		if b == nil {
			return "null"
		}
		return string(b)
	}
	k, err1 := conv.FromConnect("t", out.KeySchema, out.Key)
	v, err2 := conv.FromConnect("t", out.ValueSchema, out.Value)
	if err1 != nil || err2 != nil {
		return "ERR"
	}
	part, ts := "null", "null"
	if out.Partition >= 0 {
		part = strconv.Itoa(int(out.Partition))
	}
	if out.Timestamp >= 0 {
		ts = strconv.FormatInt(out.Timestamp, 10)
	}
	var hs []string
	for _, h := range out.Headers {
		b, err := conv.FromConnect("t", h.Schema, h.Value)
		if err != nil {
			return "ERR"
		}
		hs = append(hs, h.Key+"="+orNull(b))
	}
	return strings.Join([]string{out.Topic, part, ts, orNull(k), orNull(v), strings.Join(hs, ";")}, "\t")
}

// sameResult compares two rendered results field by field, JSON fields as
// values so that schemaless maps may list their keys in any order.
func sameResult(t *testing.T, got, want string) bool {
	g, w := strings.Split(got, "\t"), strings.Split(want, "\t")
	if len(g) != len(w) {
		return false
	}
	plain, _ := convert.New("JsonConverter", map[string]string{"schemas.enable": "false"}, false)
	same := func(a, b string) bool {
		if a == b {
			return true
		}
		_, av, err1 := plain.ToConnect("t", []byte(a))
		_, bv, err2 := plain.ToConnect("t", []byte(b))
		return err1 == nil && err2 == nil && data.ValueEqual(av, bv)
	}
	for i := range g {
		if i == 5 { // headers: key=json;...
			gh, wh := strings.Split(g[i], ";"), strings.Split(w[i], ";")
			if len(gh) != len(wh) {
				return false
			}
			for j := range gh {
				gk, gv, _ := strings.Cut(gh[j], "=")
				wk, wv, _ := strings.Cut(wh[j], "=")
				if gk != wk || !same(gv, wv) {
					return false
				}
			}
			continue
		}
		if !same(g[i], w[i]) {
			return false
		}
	}
	return true
}
