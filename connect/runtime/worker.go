package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/connect/api"
)

// Deps are the worker's collaborators, injected so that tests can run a
// worker against fakes and the command wires the real ones.
type Deps struct {
	Launcher PluginLauncher
	Offsets  OffsetStore
	Status   StatusBackend
	// NewConverter builds a converter from its class name and properties.
	NewConverter func(class string, props map[string]string, isKey bool) (Converter, error)
	// NewTransforms builds a connector's SMT chain from its config (nil
	// when it has none).
	NewTransforms func(connectorConfig map[string]string) (Transformer, error)
	// ClientOpts reach the cluster (seed brokers, client id); tasks add
	// their own options.
	ClientOpts []kgo.Opt
	Metrics    *Metrics
	Logger     *slog.Logger
}

// Worker runs the connectors' plugin processes and tasks placed on this
// worker. The herder decides what runs; the worker runs it, restarts
// failed tasks under the connector's restart policy and reports states.
type Worker struct {
	id   string // worker_id in statuses: host:port of the REST listener
	cfg  *WorkerConfig
	deps Deps

	mu    sync.Mutex
	procs map[string]*procEntry
	tasks map[TaskID]*runningTask
}

// procEntry is the plugin process serving one connector on this worker.
type procEntry struct {
	class string
	proc  PluginProcess
}

// NewWorker returns a worker with nothing running.
func NewWorker(cfg *WorkerConfig, deps Deps) *Worker {
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.Metrics == nil {
		deps.Metrics = NewMetrics(nil)
	}
	return &Worker{
		id:    strings.TrimPrefix(cfg.AdvertisedURL, "http://"),
		cfg:   cfg,
		deps:  deps,
		procs: map[string]*procEntry{},
		tasks: map[TaskID]*runningTask{},
	}
}

// ID is the worker_id this worker reports in statuses.
func (w *Worker) ID() string { return w.id }

// process returns the live plugin process for a connector, starting one
// when there is none or the last one exited.
func (w *Worker) process(ctx context.Context, connector string, config map[string]string) (PluginProcess, error) {
	class := config["connector.class"]
	w.mu.Lock()
	e := w.procs[connector]
	w.mu.Unlock()
	if e != nil && e.class == class {
		select {
		case <-e.proc.Done():
		default:
			return e.proc, nil
		}
	}
	if e != nil {
		_ = e.proc.Close()
	}
	proc, err := w.deps.Launcher.Launch(ctx, connector, config)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	w.procs[connector] = &procEntry{class: class, proc: proc}
	w.mu.Unlock()
	return proc, nil
}

// releaseProcess stops a connector's plugin process once nothing of the
// connector runs here any more.
func (w *Worker) releaseProcess(connector string) {
	w.mu.Lock()
	for id := range w.tasks {
		if id.Connector == connector {
			w.mu.Unlock()
			return
		}
	}
	e := w.procs[connector]
	delete(w.procs, connector)
	w.mu.Unlock()
	if e != nil {
		_ = e.proc.Close()
	}
}

// TaskConfigs runs the connector instance's part: the task configs for
// the connector config, at most tasks.max of them.
func (w *Worker) TaskConfigs(ctx context.Context, name string, config map[string]string) ([]map[string]string, error) {
	maxTasks, err := tasksMax(config)
	if err != nil {
		return nil, err
	}
	proc, err := w.process(ctx, name, config)
	if err != nil {
		return nil, err
	}
	tasks, err := proc.Connector().TaskConfigs(ctx, config, maxTasks)
	if err != nil {
		return nil, explainExit(proc, err)
	}
	if len(tasks) > maxTasks {
		return nil, fmt.Errorf("the connector generated %d task configs, more than tasks.max=%d", len(tasks), maxTasks)
	}
	return tasks, nil
}

// explainExit adds why a plugin process died to an error of a call into
// it: a process killed for hanging, for its memory or by a crash fails
// its calls with a bare RPC error, and the reason is what a user needs in
// the trace. The process's exit is noticed shortly after the call fails,
// so this waits up to a second for it.
func explainExit(proc PluginProcess, err error) error {
	if err == nil {
		return nil
	}
	select {
	case <-proc.Done():
	case <-time.After(time.Second):
		return err
	}
	if perr := proc.Err(); perr != nil {
		return fmt.Errorf("%w (the plugin process exited: %v)", err, perr)
	}
	return err
}

func tasksMax(config map[string]string) (int, error) {
	v := strings.TrimSpace(config["tasks.max"])
	if v == "" {
		return 1, nil
	}
	var n int
	if _, err := fmt.Sscanf(v, "%d", &n); err != nil || n < 1 {
		return 0, fmt.Errorf("tasks.max=%q: want a positive integer", v)
	}
	return n, nil
}

// runningTask is one task placed on this worker and its restart loop.
type runningTask struct {
	id        TaskID
	connCfg   map[string]string
	taskCfg   map[string]string
	cancel    context.CancelFunc
	done      chan struct{}
	mu        sync.Mutex
	paused    bool
	setPaused func(bool) // the live attempt's, nil between attempts
}

// Running reports the task config a task runs with, if it runs here.
func (w *Worker) Running(id TaskID) (map[string]string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.tasks[id]
	if !ok {
		return nil, false
	}
	return t.taskCfg, true
}

// RunningTasks lists the tasks running here.
func (w *Worker) RunningTasks() []TaskID {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]TaskID, 0, len(w.tasks))
	for id := range w.tasks {
		out = append(out, id)
	}
	return out
}

// StartTask starts a task with the connector's and the task's config, paused
// when the connector's target state is PAUSED.
func (w *Worker) StartTask(id TaskID, connCfg, taskCfg map[string]string, paused bool) {
	ctx, cancel := context.WithCancel(context.Background())
	t := &runningTask{id: id, connCfg: connCfg, taskCfg: taskCfg, cancel: cancel, done: make(chan struct{}), paused: paused}
	w.mu.Lock()
	if old := w.tasks[id]; old != nil {
		w.mu.Unlock()
		w.StopTask(id)
		w.mu.Lock()
	}
	w.tasks[id] = t
	w.mu.Unlock()
	go w.superviseTask(ctx, t)
}

// StopTask stops a task and waits (up to task.shutdown.graceful.timeout.ms
// plus the flush) for it to finish.
func (w *Worker) StopTask(id TaskID) {
	w.mu.Lock()
	t := w.tasks[id]
	delete(w.tasks, id)
	w.mu.Unlock()
	if t == nil {
		return
	}
	t.cancel()
	select {
	case <-t.done:
	case <-time.After(time.Duration(w.cfg.TaskShutdownTimeoutMs+w.cfg.OffsetFlushTimeoutMs) * time.Millisecond):
		w.deps.Logger.Warn("task did not stop in time; its plugin process will be killed", "task", id.String())
		w.mu.Lock()
		e := w.procs[id.Connector]
		delete(w.procs, id.Connector)
		w.mu.Unlock()
		if e != nil {
			_ = e.proc.Close()
		}
	}
	w.releaseProcess(id.Connector)
}

// PauseTask pauses or resumes a running task.
func (w *Worker) PauseTask(id TaskID, paused bool) {
	w.mu.Lock()
	t := w.tasks[id]
	w.mu.Unlock()
	if t == nil {
		return
	}
	t.mu.Lock()
	if t.paused == paused {
		t.mu.Unlock()
		return
	}
	t.paused = paused
	set := t.setPaused
	t.mu.Unlock()
	if set != nil {
		set(paused)
	}
	state := api.StateRunning
	if paused {
		state = api.StatePaused
	}
	w.deps.Status.PutTask(id, Status{State: state, WorkerID: w.id})
}

// superviseTask runs a task until it is stopped, restarting it after a
// failure as the connector's restart policy says, and reporting FAILED
// with the reason while it waits.
func (w *Worker) superviseTask(ctx context.Context, t *runningTask) {
	defer close(t.done)
	m := w.deps.Metrics.task(t.id)
	defer m.failed.Set(0) // a stopped task is no longer failing here
	policy, err := parseRestartPolicy(t.connCfg)
	if err != nil {
		w.fail(t.id, err)
		return
	}
	backoff := restartBackoff{policy: policy}
	for ctx.Err() == nil {
		start := time.Now()
		err := w.runTaskOnce(ctx, t, m)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("the task stopped by itself")
		}
		m.failed.Set(1)
		w.fail(t.id, err)
		delay, ok := backoff.failed(time.Since(start))
		if !ok {
			return
		}
		w.deps.Logger.Warn("task failed; restarting after backoff", "task", t.id.String(), "backoff", delay, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		m.restarts.Inc()
		w.deps.Status.PutTask(t.id, Status{State: api.StateRestarting, WorkerID: w.id})
	}
}

func (w *Worker) fail(id TaskID, err error) {
	w.deps.Logger.Error("task failed", "task", id.String(), "err", err)
	w.deps.Status.PutTask(id, Status{State: api.StateFailed, Trace: err.Error(), WorkerID: w.id})
}

// runTaskOnce builds one attempt of a task (plugin process, converters,
// transforms, clients) and runs it until it fails or ctx ends.
func (w *Worker) runTaskOnce(ctx context.Context, t *runningTask, m *taskMetrics) (err error) {
	class := t.connCfg["connector.class"]
	kind := w.deps.Launcher.Kind(class)
	if kind == "" {
		return fmt.Errorf("no plugin implements connector.class %q (plugin.path %v)", class, w.cfg.PluginPath)
	}
	proc, err := w.process(ctx, t.id.Connector, t.connCfg)
	if err != nil {
		return fmt.Errorf("starting the plugin: %w", err)
	}
	defer func() {
		if ctx.Err() == nil {
			err = explainExit(proc, err)
		}
	}()
	pipe, err := w.pipeline(t, m)
	if err != nil {
		return err
	}
	flushInt := time.Duration(w.cfg.OffsetFlushIntervalMs) * time.Millisecond
	flushTO := time.Duration(w.cfg.OffsetFlushTimeoutMs) * time.Millisecond
	t.mu.Lock()
	paused := t.paused
	t.mu.Unlock()
	state := api.StateRunning
	if paused {
		state = api.StatePaused
	}
	m.running.Set(1)
	m.failed.Set(0)
	defer m.running.Set(0)
	if kind == "source" {
		codec, err := producerCompression(w.cfg.Raw["producer.compression.type"])
		if err != nil {
			return err
		}
		maxReq, err := producerMaxRequestSize(w.cfg.Raw["producer.max.request.size"])
		if err != nil {
			return err
		}
		producer, err := kgo.NewClient(append(append([]kgo.Opt(nil), w.deps.ClientOpts...), sourceProducerOpts(codec, maxReq)...)...)
		if err != nil {
			return fmt.Errorf("producer: %w", err)
		}
		defer producer.Close()
		st := &sourceTask{
			taskPipeline: pipe, client: proc.Source(t.id), producer: producer, offsets: w.deps.Offsets,
			config: t.taskCfg, flushInt: flushInt, flushTO: flushTO,
			pending: map[string]SourceOffset{}, gate: newPauseGate(paused),
			topics: w.deps.Status, seenTopics: map[string]bool{},
		}
		w.attach(t, st.gate.set)
		w.deps.Status.PutTask(t.id, Status{State: state, WorkerID: w.id})
		return st.run(ctx)
	}
	topics, regex, err := sinkTopics(t.connCfg)
	if err != nil {
		return err
	}
	sk := &sinkTask{
		taskPipeline: pipe, client: proc.Sink(t.id), config: t.taskCfg, flushInt: flushInt, flushTO: flushTO,
		current: map[TopicPartition]int64{}, gate: newPauseGate(paused), maxBatch: 500,
	}
	copts := append(append([]kgo.Opt(nil), w.deps.ClientOpts...), sk.sinkConsumerOpts(topics, regex)...)
	if ms, err := strconv.ParseInt(w.cfg.Raw["consumer.session.timeout.ms"], 10, 64); err == nil && ms > 0 {
		// Kafka passes consumer.* worker settings to sink consumers; the
		// session timeout is the one that decides how fast a dead
		// worker's sink partitions move.
		copts = append(copts, kgo.SessionTimeout(time.Duration(ms)*time.Millisecond))
	}
	consumer, err := kgo.NewClient(copts...)
	if err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	sk.consumer = consumer
	if pipe.errs.dlqTopic != "" {
		dlq, err := kgo.NewClient(append(append([]kgo.Opt(nil), w.deps.ClientOpts...), kgo.AllowAutoTopicCreation())...)
		if err != nil {
			consumer.Close()
			return fmt.Errorf("dead letter queue producer: %w", err)
		}
		defer dlq.Close()
		sk.dlq = dlq
	}
	for _, tp := range topics {
		if !regex {
			w.deps.Status.AddTopic(t.id.Connector, tp)
		}
	}
	w.attach(t, sk.gate.set)
	w.deps.Status.PutTask(t.id, Status{State: state, WorkerID: w.id})
	return sk.run(ctx)
}

// attach makes set the live attempt's pause switch, and applies the
// current target to it: a pause or resume that came while the attempt was
// being built would otherwise be lost.
func (w *Worker) attach(t *runningTask, set func(bool)) {
	t.mu.Lock()
	t.setPaused = set
	paused := t.paused
	t.mu.Unlock()
	set(paused)
}

// pipeline builds a task's converters (the connector's key.converter and
// value.converter, else the worker's), transforms and error policy.
func (w *Worker) pipeline(t *runningTask, m *taskMetrics) (taskPipeline, error) {
	p := taskPipeline{id: t.id, metrics: m, logger: w.deps.Logger.With("connector", t.id.Connector, "task", t.id.Task)}
	var err error
	if p.errs, err = parseErrorPolicy(t.connCfg); err != nil {
		return p, err
	}
	conv := func(key string, isKey bool) (Converter, error) {
		class := w.cfg.Raw[key]
		if c := strings.TrimSpace(t.connCfg[key]); c != "" {
			class = c
		}
		c, err := w.deps.NewConverter(class, ConverterProps(key, w.cfg.Raw, t.connCfg), isKey)
		if err != nil {
			return nil, fmt.Errorf("%s=%s: %w", key, class, err)
		}
		return c, nil
	}
	p.keyClass, p.valueClass, p.connClass = w.converterClass(t.connCfg, "key.converter"),
		w.converterClass(t.connCfg, "value.converter"), t.connCfg["connector.class"]
	if p.keyConv, err = conv("key.converter", true); err != nil {
		return p, err
	}
	if p.valueConv, err = conv("value.converter", false); err != nil {
		return p, err
	}
	if w.deps.NewTransforms != nil {
		if p.chain, err = w.deps.NewTransforms(t.connCfg); err != nil {
			return p, fmt.Errorf("transforms: %w", err)
		}
	}
	return p, nil
}

// sourceMaxRequestBytes caps a source producer's produce requests at
// Kafka's max.request.size default, 1 MiB; franz-go's own cap is 100 MiB,
// and a request of a few MiB (two or more full 1 MB batches, which a
// source polling thousands of records at a time sends) cost the broker
// more per byte than one of 1 MiB: it grows its frame buffer by doubling
// past 1 MiB. Batches stay as they were (up to ~1 MB each).
const sourceMaxRequestBytes = 1 << 20

// producerMaxRequestSize reads the worker's producer.max.request.size
// (Kafka's producer setting, passed to source producers as Kafka Connect
// does); empty means the default, sourceMaxRequestBytes.
func producerMaxRequestSize(v string) (int32, error) {
	if v == "" {
		return sourceMaxRequestBytes, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
	if err != nil || n < 1<<10 || n > 1<<30 {
		return 0, fmt.Errorf("producer.max.request.size %q: want a number of bytes from 1024 to 1073741824", v)
	}
	return int32(n), nil
}

// sourceProducerOpts are a source task's producer settings on top of
// the worker's client options; maxRequest caps a produce request, and a
// batch too when it is below franz-go's batch size (as Kafka's
// max.request.size bounds both).
func sourceProducerOpts(codec kgo.CompressionCodec, maxRequest int32) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(5 * time.Millisecond), kgo.AllowAutoTopicCreation(),
		kgo.RecordPartitioner(newSourcePartitioner()), kgo.ProducerBatchCompression(codec),
		kgo.BrokerMaxWriteBytes(maxRequest),
	}
	if maxRequest < kafkaBatchMaxBytes {
		opts = append(opts, kgo.ProducerBatchMaxBytes(maxRequest))
	}
	return opts
}

// kafkaBatchMaxBytes is franz-go's default producer batch size.
const kafkaBatchMaxBytes = 1000012

// producerCompression is the source producers' codec from the worker's
// producer.compression.type: Kafka's default is none (franz-go's own
// default, snappy, would cost every record a compression the user did not
// ask for).
func producerCompression(v string) (kgo.CompressionCodec, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.NoCompression(), fmt.Errorf("producer.compression.type=%q: want none, gzip, snappy, lz4 or zstd", v)
}

// converterClass is the class a task's converter key resolves to: the
// connector's setting, else the worker's.
func (w *Worker) converterClass(connCfg map[string]string, key string) string {
	if c := strings.TrimSpace(connCfg[key]); c != "" {
		return c
	}
	return w.cfg.Raw[key]
}

// sinkTopics reads a sink connector's topics or topics.regex (exactly one
// of them, as Kafka's SinkConnectorConfig requires).
func sinkTopics(cfg map[string]string) ([]string, bool, error) {
	list, re := strings.TrimSpace(cfg["topics"]), strings.TrimSpace(cfg["topics.regex"])
	switch {
	case list != "" && re != "":
		return nil, false, errors.New("topics and topics.regex are mutually exclusive")
	case re != "":
		if _, err := regexp.Compile(re); err != nil {
			return nil, false, fmt.Errorf("topics.regex=%q: %w", re, err)
		}
		return []string{re}, true, nil
	case list != "":
		return splitList(list), false, nil
	}
	return nil, false, errors.New("a sink connector needs topics or topics.regex")
}

// Close stops every task and plugin process.
func (w *Worker) Close() {
	for _, id := range w.RunningTasks() {
		w.StopTask(id)
	}
	w.mu.Lock()
	procs := w.procs
	w.procs = map[string]*procEntry{}
	w.mu.Unlock()
	for _, e := range procs {
		_ = e.proc.Close()
	}
}
