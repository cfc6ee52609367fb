package sdk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluice-io/sluice/connect/proto/connectv1"
)

// server adapts the plain Go interfaces to the three gRPC services.
type server struct {
	connector *connectorServer
	source    *sourceServer
	sink      *sinkServer
}

func newServer(cs []Connector, connectorName string) *server {
	byName := map[string]Connector{}
	for _, c := range cs {
		d := c.Describe()
		byName[d.Class] = c
		for _, a := range d.Aliases {
			byName[a] = c
		}
	}
	log := Logger
	if connectorName != "" {
		log = log.With("connector", connectorName)
	}
	tasks := &taskTable{byName: byName, log: log}
	return &server{
		connector: &connectorServer{cs: cs, byName: byName},
		source:    &sourceServer{tasks: tasks},
		sink:      &sinkServer{tasks: tasks},
	}
}

// safe runs f, turning a panic into an error carrying its stack so the
// task fails with a useful trace instead of taking the whole plugin (and
// every other task of the connector) down.
func safe(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
		}
	}()
	return f()
}

// taskErr reports a task method's failure to the host: the status
// message becomes the task's FAILED trace.
func taskErr(what string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return status.Error(codes.Canceled, err.Error())
	}
	return status.Errorf(codes.Unknown, "%s: %v", what, err)
}

type connectorServer struct {
	connectv1.UnimplementedConnectorPluginServer
	cs     []Connector
	byName map[string]Connector
}

func (s *connectorServer) find(class string) (Connector, error) {
	c, ok := s.byName[class]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "this plugin has no connector class %q", class)
	}
	return c, nil
}

func (s *connectorServer) Describe(context.Context, *connectv1.DescribeRequest) (*connectv1.DescribeResponse, error) {
	resp := &connectv1.DescribeResponse{}
	for _, c := range s.cs {
		resp.Connectors = append(resp.Connectors, descriptorToProto(c.Describe()))
	}
	return resp, nil
}

func (s *connectorServer) Validate(ctx context.Context, req *connectv1.ValidateRequest) (*connectv1.ValidateResponse, error) {
	c, err := s.find(req.GetConnectorClass())
	if err != nil {
		return nil, err
	}
	var vals []ConfigValue
	if err := safe(func() (err error) {
		vals, err = c.Validate(ctx, req.GetConfig().GetProps())
		return err
	}); err != nil {
		return nil, taskErr("validate", err)
	}
	resp := &connectv1.ValidateResponse{}
	for _, v := range vals {
		pv := &connectv1.ConfigValue{Name: v.Name, RecommendedValues: v.Recommended, Errors: v.Errors, Visible: v.Visible}
		if v.Value != nil {
			pv.Value, pv.HasValue = *v.Value, true
		}
		resp.Values = append(resp.Values, pv)
	}
	return resp, nil
}

func (s *connectorServer) TaskConfigs(ctx context.Context, req *connectv1.TaskConfigsRequest) (*connectv1.TaskConfigsResponse, error) {
	c, err := s.find(req.GetConnectorClass())
	if err != nil {
		return nil, err
	}
	var cfgs []map[string]string
	if err := safe(func() (err error) {
		cfgs, err = c.TaskConfigs(ctx, req.GetConfig().GetProps(), int(req.GetMaxTasks()))
		return err
	}); err != nil {
		return nil, taskErr("task configs", err)
	}
	resp := &connectv1.TaskConfigsResponse{}
	for _, cfg := range cfgs {
		resp.Tasks = append(resp.Tasks, &connectv1.Config{Props: cfg})
	}
	return resp, nil
}

func (s *connectorServer) AlterOffsets(ctx context.Context, req *connectv1.AlterOffsetsRequest) (*connectv1.AlterOffsetsResponse, error) {
	c, err := s.find(req.GetConnectorClass())
	if err != nil {
		return nil, err
	}
	src, err := connectv1.PositionsFromProto(req.GetSourceOffsets())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	offs := Offsets{Source: src}
	for _, o := range req.GetSinkOffsets() {
		offs.Sink = append(offs.Sink, TopicPartitionOffset{Topic: o.GetTopic(), Partition: o.GetPartition(), Offset: o.GetOffset()})
	}
	var managed bool
	if err := safe(func() (err error) {
		managed, err = c.AlterOffsets(ctx, req.GetConfig().GetProps(), offs)
		return err
	}); err != nil {
		return nil, taskErr("alter offsets", err)
	}
	return &connectv1.AlterOffsetsResponse{ManagedExternally: managed}, nil
}

func descriptorToProto(d Descriptor) *connectv1.ConnectorDescriptor {
	p := &connectv1.ConnectorDescriptor{
		ClassName: d.Class, Aliases: d.Aliases, Version: d.Version,
		Capabilities: &connectv1.Capabilities{
			ExactlyOnce: d.ExactlyOnce, TransactionBoundaries: d.TransactionBoundaries, AlterOffsets: d.AlterOffsets,
		},
	}
	switch d.Type {
	case Source:
		p.Type = connectv1.ConnectorType_CONNECTOR_TYPE_SOURCE
	case Sink:
		p.Type = connectv1.ConnectorType_CONNECTOR_TYPE_SINK
	}
	for _, k := range d.Config {
		pk := &connectv1.ConfigKey{
			Name: k.Name, Type: k.Type, Required: k.Required, Importance: k.Importance,
			Documentation: k.Documentation, Group: k.Group, OrderInGroup: int32(k.OrderInGroup),
			Width: k.Width, DisplayName: k.DisplayName, Dependents: k.Dependents,
		}
		if k.Default != nil {
			pk.HasDefault, pk.DefaultValue = true, *k.Default
		}
		p.Config = append(p.Config, pk)
	}
	return p
}

// taskKey names a task within the process.
type taskKey struct {
	connector string
	task      int32
}

// taskTable holds the running tasks of both kinds.
type taskTable struct {
	byName map[string]Connector
	log    *slog.Logger
	mu     sync.Mutex
	tasks  map[taskKey]any // *sourceTask or *sinkTask
}

func keyOf(id *connectv1.TaskId) taskKey {
	return taskKey{connector: id.GetConnector(), task: id.GetTask()}
}

// put registers t for id, returning the task it replaces (to be stopped)
// or an error when id already runs a newer generation. The same generation
// may start again: a worker restarting a failed task without a rebalance
// keeps its generation.
func (tt *taskTable) put(id *connectv1.TaskId, gen int64, t any, genOf func(any) int64) (old any, err error) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	if tt.tasks == nil {
		tt.tasks = map[taskKey]any{}
	}
	k := keyOf(id)
	if cur, ok := tt.tasks[k]; ok {
		if g := genOf(cur); g > gen {
			return nil, status.Errorf(codes.FailedPrecondition, "task %s-%d already runs generation %d (asked to start %d)", k.connector, k.task, g, gen)
		}
		old = cur
	}
	tt.tasks[k] = t
	return old, nil
}

// get returns the task for id if it runs generation gen.
func (tt *taskTable) get(id *connectv1.TaskId, gen int64, genOf func(any) int64) (any, error) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	k := keyOf(id)
	t, ok := tt.tasks[k]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "task %s-%d is not started", k.connector, k.task)
	}
	if g := genOf(t); g != gen {
		return nil, status.Errorf(codes.FailedPrecondition, "task %s-%d runs generation %d, not %d", k.connector, k.task, g, gen)
	}
	return t, nil
}

// remove drops t if it is still the task registered for id.
func (tt *taskTable) remove(id *connectv1.TaskId, t any) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	if k := keyOf(id); tt.tasks[k] == t {
		delete(tt.tasks, k)
	}
}

func (tt *taskTable) connector(class string) (Connector, error) {
	c, ok := tt.byName[class]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "this plugin has no connector class %q", class)
	}
	return c, nil
}
