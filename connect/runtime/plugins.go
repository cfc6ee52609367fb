package runtime

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-io/sluice/connect/api"
	"github.com/sluice-io/sluice/connect/convert"
	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/pluginhost"
	"github.com/sluice-io/sluice/connect/proto/connectv1"
	"github.com/sluice-io/sluice/connect/transform"
)

// hostPlugins is the PluginLauncher and Catalog of a real worker: the
// connector plugins discovered in plugin.path, run through pluginhost, and
// the converters, transforms and predicates built into the host.
type hostPlugins struct {
	host    *pluginhost.Host
	plugins []pluginhost.Plugin
	// generation fences a task's calls (the group generation in
	// distributed mode).
	generation func() int32
	memLimit   int64 // worker default for plugin.memory.limit.bytes
}

func (p *hostPlugins) find(class string) (pluginhost.Plugin, *connectv1.ConnectorDescriptor, bool) {
	return pluginhost.Find(p.plugins, class)
}

// Kind says whether class is a source or sink connector ("" = unknown).
func (p *hostPlugins) Kind(class string) string {
	_, d, ok := p.find(class)
	if !ok {
		return ""
	}
	switch d.Type {
	case connectv1.ConnectorType_CONNECTOR_TYPE_SOURCE:
		return "source"
	case connectv1.ConnectorType_CONNECTOR_TYPE_SINK:
		return "sink"
	}
	return ""
}

// Launch starts the plugin binary implementing the config's
// connector.class for connector, with the connector's
// plugin.memory.limit.bytes, else the worker's.
func (p *hostPlugins) Launch(ctx context.Context, connector string, cfg map[string]string) (PluginProcess, error) {
	class := cfg["connector.class"]
	pl, d, ok := p.find(class)
	if !ok {
		return nil, fmt.Errorf("no plugin in plugin.path implements connector.class %q", class)
	}
	limit := p.memLimit
	if v, ok := cfg["plugin.memory.limit.bytes"]; ok {
		n, err := bytesSetting(cfg, "plugin.memory.limit.bytes")
		if err != nil {
			return nil, err
		}
		if v != "" {
			limit = n
		}
	}
	proc, err := p.host.Launch(ctx, pl, connector, pluginhost.Limits{MemoryBytes: limit})
	if err != nil {
		return nil, err
	}
	return &hostProcess{p: proc, class: d.ClassName, gen: p.generation}, nil
}

// hostProcess adapts a pluginhost.Process to the runtime's PluginProcess.
type hostProcess struct {
	p     *pluginhost.Process
	class string
	gen   func() int32
}

func (h *hostProcess) Connector() ConnectorClient { return h }
func (h *hostProcess) Done() <-chan struct{}      { return h.p.Done() }
func (h *hostProcess) Err() error                 { return h.p.Err() }
func (h *hostProcess) Close() error               { return h.p.Close() }

func (h *hostProcess) TaskConfigs(ctx context.Context, cfg map[string]string, maxTasks int) ([]map[string]string, error) {
	return h.p.TaskConfigs(ctx, h.class, cfg, maxTasks)
}

func (h *hostProcess) AlterOffsets(ctx context.Context, cfg map[string]string, source []SourceOffset, sink []SinkOffset) (bool, error) {
	ps := make([]connectv1.Position, 0, len(source))
	for _, o := range source {
		ps = append(ps, connectv1.Position{Partition: o.Partition, Offset: o.Offset})
	}
	var ks []*connectv1.TopicPartitionOffset
	for _, o := range sink {
		ks = append(ks, &connectv1.TopicPartitionOffset{Topic: o.Topic, Partition: o.Partition, Offset: o.Offset})
	}
	return h.p.AlterOffsets(ctx, h.class, cfg, ps, ks)
}

func (h *hostProcess) taskID(id TaskID) pluginhost.TaskID {
	return pluginhost.TaskID{Task: int32(id.Task), Generation: int64(h.gen())}
}

func (h *hostProcess) Source(id TaskID) SourceTaskClient {
	return &hostSource{t: h.p.SourceTask(h.taskID(id)), class: h.class}
}

func (h *hostProcess) Sink(id TaskID) SinkTaskClient {
	return &hostSink{t: h.p.SinkTask(h.taskID(id)), class: h.class}
}

type hostSource struct {
	t     *pluginhost.SourceTask
	class string
}

func (s *hostSource) Start(ctx context.Context, cfg map[string]string, committed []SourceOffset) error {
	ps := make([]connectv1.Position, 0, len(committed))
	for _, o := range committed {
		ps = append(ps, connectv1.Position{Partition: o.Partition, Offset: o.Offset})
	}
	return s.t.Start(ctx, s.class, cfg, ps)
}

// pollMaxBytes bounds one batch well under gRPC's message limits.
const pollMaxBytes = 4 << 20

// Poll asks for positions per batch: records then cross the plugin
// boundary without their own (and packed when raw), the cheaper form.
func (s *hostSource) Poll(ctx context.Context, maxRecords int, maxWait time.Duration) (PolledBatch, error) {
	b, err := s.t.Poll(ctx, pluginhost.PollLimits{MaxRecords: maxRecords, MaxBytes: pollMaxBytes, MaxWait: maxWait, BatchPositions: true})
	if err != nil {
		return PolledBatch{}, err
	}
	out := PolledBatch{Seq: b.Seq, Records: b.Records, Positions: make([]KeyedOffset, 0, len(b.Positions))}
	for _, p := range b.Positions {
		out.Positions = append(out.Positions, KeyedOffset{Key: p.Key, SourceOffset: SourceOffset{Partition: p.Partition, Offset: p.Offset}})
	}
	return out, nil
}

func (s *hostSource) Commit(ctx context.Context, seq uint64) error { return s.t.Commit(ctx, seq, nil) }
func (s *hostSource) Stop(ctx context.Context) error               { return s.t.Stop(ctx) }

type hostSink struct {
	t     *pluginhost.SinkTask
	class string
}

func toProtoParts(parts []TopicPartition) []*connectv1.TopicPartition {
	out := make([]*connectv1.TopicPartition, 0, len(parts))
	for _, tp := range parts {
		out = append(out, &connectv1.TopicPartition{Topic: tp.Topic, Partition: tp.Partition})
	}
	return out
}

func (s *hostSink) Start(ctx context.Context, cfg map[string]string) error {
	return s.t.Start(ctx, s.class, cfg)
}

func (s *hostSink) Open(ctx context.Context, parts []TopicPartition) (map[TopicPartition]int64, error) {
	offs, err := s.t.Open(ctx, toProtoParts(parts))
	if err != nil {
		return nil, err
	}
	out := map[TopicPartition]int64{}
	for _, o := range offs {
		out[TopicPartition{o.Topic, o.Partition}] = o.Offset
	}
	return out, nil
}

func (s *hostSink) Put(ctx context.Context, recs []*data.Record) (PutResult, error) {
	r, err := s.t.Put(ctx, recs)
	if err != nil {
		return PutResult{}, err
	}
	return PutResult{Retriable: r.Retry > 0 || r.RetryMessage != "", Backoff: r.Retry, Failed: r.Errors}, nil
}

func (s *hostSink) PreCommit(ctx context.Context, offs map[TopicPartition]int64) (map[TopicPartition]int64, error) {
	in := make([]*connectv1.TopicPartitionOffset, 0, len(offs))
	for tp, o := range offs {
		in = append(in, &connectv1.TopicPartitionOffset{Topic: tp.Topic, Partition: tp.Partition, Offset: o})
	}
	safe, err := s.t.PreCommit(ctx, in)
	if err != nil {
		return nil, err
	}
	out := map[TopicPartition]int64{}
	for _, o := range safe {
		out[TopicPartition{o.Topic, o.Partition}] = o.Offset
	}
	return out, nil
}

func (s *hostSink) Close(ctx context.Context, parts []TopicPartition) error {
	return s.t.Close(ctx, toProtoParts(parts))
}
func (s *hostSink) Stop(ctx context.Context) error { return s.t.Stop(ctx) }

// Plugins lists the installed connectors, and with connectorsOnly false
// the host's converters, transforms and predicates too.
func (p *hostPlugins) Plugins(connectorsOnly bool) []api.PluginInfo {
	out := []api.PluginInfo{}
	for _, pl := range p.plugins {
		for _, d := range pl.Connectors {
			t := api.PluginSource
			if d.Type == connectv1.ConnectorType_CONNECTOR_TYPE_SINK {
				t = api.PluginSink
			}
			out = append(out, api.PluginInfo{Class: d.ClassName, Type: t, Version: d.Version})
		}
	}
	if !connectorsOnly {
		for _, b := range builtinPlugins() {
			out = append(out, api.PluginInfo{Class: b.Class, Type: api.PluginType(b.Type), Version: b.Version})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Class < out[j].Class })
	return out
}

func builtinPlugins() []data.PluginInfo {
	return append(convert.Plugins(), transform.Plugins()...)
}

// PluginConfig describes a plugin's config keys, by class name or alias.
func (p *hostPlugins) PluginConfig(plugin string) ([]api.ConfigKeyInfo, error) {
	if _, d, ok := p.find(plugin); ok {
		out := make([]api.ConfigKeyInfo, 0, len(d.Config))
		for _, k := range d.Config {
			out = append(out, keyInfo(k))
		}
		return out, nil
	}
	for _, b := range builtinPlugins() {
		if b.Class == plugin || shortName(b.Class) == plugin {
			out := make([]api.ConfigKeyInfo, 0, len(b.Config))
			for _, k := range b.Config {
				out = append(out, api.ConfigKeyInfo{Name: k.Name, Type: k.Type, Required: k.Required,
					DefaultValue: k.Default, Importance: k.Importance, Documentation: k.Documentation, Width: "NONE", DisplayName: k.Name})
			}
			return out, nil
		}
	}
	return nil, api.NotFound("Unknown plugin %s.", plugin)
}

func shortName(class string) string {
	if i := strings.LastIndexByte(class, '.'); i >= 0 {
		return class[i+1:]
	}
	return class
}

func keyInfo(k *connectv1.ConfigKey) api.ConfigKeyInfo {
	info := api.ConfigKeyInfo{
		Name: k.Name, Type: k.Type, Required: k.Required, Importance: k.Importance, Documentation: k.Documentation,
		Group: k.Group, OrderInGroup: int(k.OrderInGroup), Width: orDefault(k.Width, "NONE"),
		DisplayName: orDefault(k.DisplayName, k.Name), Dependents: k.Dependents,
	}
	if k.HasDefault {
		v := k.DefaultValue
		info.DefaultValue = &v
	}
	return info
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// Validate checks a connector config as Kafka's AbstractHerder does: the
// framework's keys (name, tasks.max, converters, transforms, errors.*,
// topics for sinks) and then the plugin's own Validate, in one answer.
func (p *hostPlugins) Validate(ctx context.Context, cfg map[string]string) (*api.ConfigInfos, error) {
	class := cfg["connector.class"]
	infos := frameworkValidation(cfg, p.Kind(class))
	pl, d, ok := p.find(class)
	if !ok {
		return infos, nil
	}
	infos.Name = d.ClassName
	proc, err := p.host.Launch(ctx, pl, "validate", pluginhost.Limits{MemoryBytes: p.memLimit})
	if err != nil {
		return nil, fmt.Errorf("starting plugin %s to validate: %w", pl.Path, err)
	}
	defer func() { _ = proc.Close() }()
	values, err := proc.Validate(ctx, d.ClassName, cfg)
	if err != nil {
		return nil, fmt.Errorf("plugin validation: %w", err)
	}
	defs := map[string]*connectv1.ConfigKey{}
	for _, k := range d.Config {
		defs[k.Name] = k
	}
	for _, v := range values {
		def := defs[v.Name]
		if def == nil {
			def = &connectv1.ConfigKey{Name: v.Name, Type: "STRING", Importance: "LOW"}
		}
		ci := api.ConfigInfo{Definition: keyInfo(def), Value: api.ConfigValueInfo{
			Name: v.Name, RecommendedValues: v.RecommendedValues, Errors: v.Errors, Visible: v.Visible,
		}}
		if v.HasValue {
			val := v.Value
			ci.Value.Value = &val
		}
		if ci.Definition.Group != "" && !contains(infos.Groups, ci.Definition.Group) {
			infos.Groups = append(infos.Groups, ci.Definition.Group)
		}
		infos.ErrorCount += len(v.Errors)
		infos.Configs = append(infos.Configs, ci)
	}
	return infos, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// frameworkValidation validates the keys every connector has, in Kafka's
// groups "Common", "Transforms", "Error Handling".
func frameworkValidation(cfg map[string]string, kind string) *api.ConfigInfos {
	infos := &api.ConfigInfos{Name: cfg["connector.class"], Groups: []string{"Common", "Transforms", "Error Handling"}, Configs: []api.ConfigInfo{}}
	order := 0
	check := func(group, name, typ string, required bool, def *string, doc string, errs ...string) {
		order++
		var val *string
		if v, ok := cfg[name]; ok {
			val = &v
		} else {
			val = def
		}
		var out []string
		for _, e := range errs {
			if e != "" {
				out = append(out, e)
			}
		}
		infos.ErrorCount += len(out)
		infos.Configs = append(infos.Configs, api.ConfigInfo{
			Definition: api.ConfigKeyInfo{Name: name, Type: typ, Required: required, DefaultValue: def, Importance: "HIGH",
				Documentation: doc, Group: group, OrderInGroup: order, Width: "MEDIUM", DisplayName: name},
			Value: api.ConfigValueInfo{Name: name, Value: val, Errors: out, Visible: true},
		})
	}
	str := func(s string) *string { return &s }
	check("Common", "name", "STRING", true, nil, "Globally unique name to use for this connector.",
		missing(cfg, "name"))
	classErr := missing(cfg, "connector.class")
	if classErr == "" && kind == "" {
		classErr = fmt.Sprintf("Failed to find any class that implements Connector and which name matches %s", cfg["connector.class"])
	}
	check("Common", "connector.class", "STRING", true, nil, "Name or alias of the class for this connector.", classErr)
	var tasksErr string
	if v, ok := cfg["tasks.max"]; ok {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err != nil || n < 1 {
			tasksErr = fmt.Sprintf("Invalid value %s for configuration tasks.max: Value must be at least 1", v)
		}
	}
	check("Common", "tasks.max", "INT", false, str("1"), "Maximum number of tasks to use for this connector.", tasksErr)
	for _, key := range []string{"key.converter", "value.converter"} {
		var e string
		if v, ok := cfg[key]; ok && v != "" {
			if _, err := convert.New(v, ConverterProps(key, nil, cfg), key == "key.converter"); err != nil {
				e = fmt.Sprintf("Invalid value %s for configuration %s: %v", v, key, err)
			}
		}
		check("Common", key, "CLASS", false, nil, "Converter class for this connector's "+strings.TrimSuffix(key, ".converter")+"s.", e)
	}
	var trErr string
	if _, err := transform.NewChain(cfg); err != nil {
		trErr = err.Error()
	}
	check("Transforms", "transforms", "LIST", false, str(""), "Aliases for the transformations to be applied to records.", trErr)
	var errsErr string
	if _, err := parseErrorPolicy(cfg); err != nil {
		errsErr = err.Error()
	}
	check("Error Handling", "errors.tolerance", "STRING", false, str("none"), "Behavior for tolerating errors during connector operation.", errsErr)
	check("Error Handling", "errors.retry.timeout", "LONG", false, str("0"),
		"How long, in milliseconds, a converter or transform failing with a retriable error is run again; 0 never, -1 forever.", errsErr)
	check("Error Handling", "errors.retry.delay.max.ms", "LONG", false, str("60000"),
		"The longest wait, in milliseconds, between two retries of a failed converter or transform.", errsErr)
	var memErr string
	if _, err := bytesSetting(cfg, "plugin.memory.limit.bytes"); err != nil {
		memErr = err.Error()
	}
	check("Common", "plugin.memory.limit.bytes", "LONG", false, nil,
		"Sluice: resident memory limit of the connector's plugin process in bytes; over it the process is killed and its tasks restarted. Default: the worker's.", memErr)
	var restartErr string
	if _, err := parseRestartPolicy(cfg); err != nil {
		restartErr = err.Error()
	}
	check("Error Handling", "restart.policy", "STRING", false, str("always"),
		"Sluice: restart failed tasks by themselves (always) after restart.backoff.ms, doubling up to restart.backoff.max.ms, or leave them FAILED (never).", restartErr)
	if kind == "sink" {
		var e string
		if _, _, err := sinkTopics(cfg); err != nil {
			e = err.Error()
		}
		check("Common", "topics", "LIST", false, str(""), "List of topics to consume.", e)
	}
	return infos
}

func missing(cfg map[string]string, key string) string {
	if strings.TrimSpace(cfg[key]) == "" {
		return fmt.Sprintf("Missing required configuration %q which has no default value.", key)
	}
	return ""
}
