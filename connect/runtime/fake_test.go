package runtime

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-io/sluice/connect/api"
	"github.com/sluice-io/sluice/connect/data"
)

// Fakes standing in for plugin processes, converters and stores, so the
// herder and worker are tested without plugins or a broker's storage.

// fakePlugins is a PluginLauncher and Catalog with two in-process plugins:
// "Gen" (a source counting from its committed offset) and "Collect" (a
// sink remembering what it was given).
type fakePlugins struct {
	mu        sync.Mutex
	launches  int
	collected map[string][]string // sink connector -> values put
	failPolls int                 // Gen fails this many polls before working
	committed map[string]uint64   // source connector -> last Commit seq
	retryPuts int                 // Collect answers this many Puts retriable
	puts      int                 // Put calls seen
	altered   []string            // AlterOffsets calls, "connector: offsets"
}

func newFakePlugins() *fakePlugins {
	return &fakePlugins{collected: map[string][]string{}, committed: map[string]uint64{}}
}

func (f *fakePlugins) Kind(class string) string {
	switch class {
	case "Gen":
		return "source"
	case "Collect":
		return "sink"
	}
	return ""
}

func (f *fakePlugins) Launch(_ context.Context, connector string, cfg map[string]string) (PluginProcess, error) {
	class := cfg["connector.class"]
	if f.Kind(class) == "" {
		return nil, fmt.Errorf("no plugin %q", class)
	}
	f.mu.Lock()
	f.launches++
	f.mu.Unlock()
	return &fakeProc{f: f, connector: connector, done: make(chan struct{})}, nil
}

func (f *fakePlugins) Plugins(bool) []api.PluginInfo {
	return []api.PluginInfo{{Class: "Gen", Type: "source"}, {Class: "Collect", Type: "sink"}}
}

func (f *fakePlugins) PluginConfig(string) ([]api.ConfigKeyInfo, error) { return nil, nil }

func (f *fakePlugins) Validate(_ context.Context, cfg map[string]string) (*api.ConfigInfos, error) {
	infos := &api.ConfigInfos{Name: cfg["connector.class"], Groups: []string{}, Configs: []api.ConfigInfo{}}
	if f.Kind(cfg["connector.class"]) == "" {
		infos.ErrorCount = 1
		v := cfg["connector.class"]
		infos.Configs = append(infos.Configs, api.ConfigInfo{
			Definition: api.ConfigKeyInfo{Name: "connector.class"},
			Value:      api.ConfigValueInfo{Name: "connector.class", Value: &v, Errors: []string{"unknown class"}},
		})
	}
	return infos, nil
}

func (f *fakePlugins) values(connector string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.collected[connector]...)
}

type fakeProc struct {
	f         *fakePlugins
	connector string
	once      sync.Once
	done      chan struct{}
}

func (p *fakeProc) Connector() ConnectorClient { return p }
func (p *fakeProc) Source(TaskID) SourceTaskClient {
	return &fakeSource{f: p.f, connector: p.connector}
}
func (p *fakeProc) Sink(TaskID) SinkTaskClient { return &fakeSink{f: p.f, connector: p.connector} }
func (p *fakeProc) Done() <-chan struct{}      { return p.done }
func (p *fakeProc) Err() error                 { return nil }
func (p *fakeProc) Close() error               { p.once.Do(func() { close(p.done) }); return nil }

func (p *fakeProc) TaskConfigs(_ context.Context, cfg map[string]string, maxTasks int) ([]map[string]string, error) {
	out := make([]map[string]string, maxTasks)
	for i := range out {
		out[i] = maps.Clone(cfg)
		out[i]["task.index"] = strconv.Itoa(i)
	}
	return out, nil
}

func (p *fakeProc) AlterOffsets(_ context.Context, _ map[string]string, source []SourceOffset, sink []SinkOffset) (bool, error) {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	var parts []string
	for _, o := range source {
		parts = append(parts, fmt.Sprint(o.Partition, "=", o.Offset))
	}
	for _, o := range sink {
		parts = append(parts, fmt.Sprintf("%s-%d=%d", o.Topic, o.Partition, o.Offset))
	}
	p.f.altered = append(p.f.altered, p.connector+": "+strings.Join(parts, " "))
	return true, nil
}

// fakeSource emits "n" for n counting up from its committed offset, to
// cfg["limit"] records in all.
type fakeSource struct {
	f         *fakePlugins
	connector string
	topic     string
	next      int
	limit     int
	seq       uint64
	batchPos  bool // cfg["batch.positions"]: positions per batch, none per record
}

func (s *fakeSource) Start(_ context.Context, cfg map[string]string, committed []SourceOffset) error {
	s.topic = cfg["topic"]
	s.limit, _ = strconv.Atoi(cfg["limit"])
	s.batchPos = cfg["batch.positions"] == "true"
	for _, o := range committed {
		if v, ok := asInt(o.Offset["n"]); ok {
			s.next = int(v) + 1
		}
	}
	return nil
}

func (s *fakeSource) Poll(ctx context.Context, maxRecords int, maxWait time.Duration) (PolledBatch, error) {
	s.f.mu.Lock()
	if s.f.failPolls > 0 {
		s.f.failPolls--
		s.f.mu.Unlock()
		return PolledBatch{}, errors.New("injected poll failure")
	}
	s.f.mu.Unlock()
	if s.next >= s.limit {
		select {
		case <-ctx.Done():
		case <-time.After(maxWait):
		}
		return PolledBatch{Seq: s.seq}, nil
	}
	var recs []*data.Record
	for ; s.next < s.limit && len(recs) < maxRecords && len(recs) < 50; s.next++ {
		recs = append(recs, &data.Record{
			Topic: s.topic, Partition: -1, Timestamp: -1,
			Value: strconv.Itoa(s.next), ValueSchema: data.StringSchema,
			SourcePartition: map[string]any{"gen": s.connector}, SourceOffset: map[string]any{"n": int64(s.next)},
		})
	}
	s.seq++
	b := PolledBatch{Seq: s.seq, Records: recs}
	if s.batchPos {
		last := recs[len(recs)-1]
		key, err := canonicalJSON(last.SourcePartition)
		if err != nil {
			return PolledBatch{}, err
		}
		b.Positions = []KeyedOffset{{Key: key, SourceOffset: SourceOffset{Partition: last.SourcePartition, Offset: last.SourceOffset}}}
		for _, r := range recs {
			r.SourcePartition, r.SourceOffset = nil, nil
		}
	}
	return b, nil
}

func (s *fakeSource) Commit(_ context.Context, seq uint64) error {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.f.committed[s.connector] = seq
	return nil
}

func (s *fakeSource) Stop(context.Context) error { return nil }

type fakeSink struct {
	f         *fakePlugins
	connector string
}

func (s *fakeSink) Start(context.Context, map[string]string) error { return nil }
func (s *fakeSink) Open(context.Context, []TopicPartition) (map[TopicPartition]int64, error) {
	return nil, nil
}

// Put keeps every record but those whose value is "bad", which it
// reports failed; it answers retriable while f.retryPuts lasts.
func (s *fakeSink) Put(_ context.Context, recs []*data.Record) (PutResult, error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.f.puts++
	if s.f.retryPuts > 0 {
		s.f.retryPuts--
		return PutResult{Retriable: true, Backoff: 10 * time.Millisecond}, nil
	}
	var res PutResult
	for i, r := range recs {
		if r.Value == "bad" {
			if res.Failed == nil {
				res.Failed = map[int]string{}
			}
			res.Failed[i] = "cannot write bad"
			continue
		}
		s.f.collected[s.connector] = append(s.f.collected[s.connector], fmt.Sprint(r.Value))
	}
	return res, nil
}

func (s *fakeSink) PreCommit(_ context.Context, offs map[TopicPartition]int64) (map[TopicPartition]int64, error) {
	return offs, nil
}
func (s *fakeSink) Close(context.Context, []TopicPartition) error { return nil }
func (s *fakeSink) Stop(context.Context) error                    { return nil }

// stringConverter is a minimal StringConverter for tests.
type stringConverter struct{}

func (stringConverter) FromConnect(_ string, _ *data.Schema, v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	return []byte(fmt.Sprint(v)), nil
}

func (stringConverter) ToConnect(_ string, b []byte) (*data.Schema, any, error) {
	if b == nil {
		return nil, nil, nil
	}
	return data.StringSchema, string(b), nil
}

// memOffsets is an in-memory OffsetStore.
type memOffsets struct {
	mu   sync.Mutex
	offs map[string]map[string]SourceOffset
}

func newMemOffsets() *memOffsets { return &memOffsets{offs: map[string]map[string]SourceOffset{}} }

func (m *memOffsets) Read(_ context.Context, connector string) ([]SourceOffset, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []SourceOffset
	for _, o := range m.offs[connector] {
		out = append(out, o)
	}
	return out, nil
}

func (m *memOffsets) Write(_ context.Context, connector string, offs []SourceOffset) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.offs[connector] == nil {
		m.offs[connector] = map[string]SourceOffset{}
	}
	for _, o := range offs {
		k, err := canonicalJSON(o.Partition)
		if err != nil {
			return err
		}
		if o.Offset == nil {
			delete(m.offs[connector], k)
			continue
		}
		m.offs[connector][k] = o
	}
	return nil
}
