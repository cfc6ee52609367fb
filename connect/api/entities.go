// Package api holds the JSON entities, errors and Herder interface of Sluice's
// Kafka Connect REST API. Field names, field order and omission rules follow
// Kafka Connect's REST entities exactly so that existing clients (curl scripts,
// kcctl, Strimzi, Terraform providers) read Sluice's answers unchanged.
//
// The package has no behaviour beyond (de)serialisation: connect/rest serves the
// routes on top of a Herder, and connect/runtime implements the Herder.
package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// State is the runtime state of a connector or task, as shown in status
// entities and written to the status topic.
type State string

// Runtime states. StateStopped applies to connectors only, never to tasks.
const (
	StateUnassigned State = "UNASSIGNED"
	StateRunning    State = "RUNNING"
	StatePaused     State = "PAUSED"
	StateFailed     State = "FAILED"
	StateRestarting State = "RESTARTING"
	StateStopped    State = "STOPPED"
)

// TargetState is the state a user asked a connector to be in, as persisted in
// the config topic.
type TargetState string

// Target states.
const (
	TargetStarted TargetState = "STARTED"
	TargetPaused  TargetState = "PAUSED"
	TargetStopped TargetState = "STOPPED"
)

// ConnectorType is the lower-case kind of a connector in ConnectorInfo and
// ConnectorStateInfo.
type ConnectorType string

// Connector types.
const (
	TypeSource  ConnectorType = "source"
	TypeSink    ConnectorType = "sink"
	TypeUnknown ConnectorType = "unknown"
)

// ServerInfo answers GET /.
type ServerInfo struct {
	Version        string `json:"version"`
	Commit         string `json:"commit"`
	KafkaClusterID string `json:"kafka_cluster_id"`
}

// ConnectorTaskID names one task of a connector.
type ConnectorTaskID struct {
	Connector string `json:"connector"`
	Task      int    `json:"task"`
}

// String is Kafka's "<connector>-<task>" form, the key of the tasks-config map.
func (id ConnectorTaskID) String() string {
	return id.Connector + "-" + strconv.Itoa(id.Task)
}

// ConnectorInfo describes a connector: its config and task ids.
type ConnectorInfo struct {
	Name   string            `json:"name"`
	Config map[string]string `json:"config"`
	Tasks  []ConnectorTaskID `json:"tasks"`
	Type   ConnectorType     `json:"type"`
}

// MarshalJSON writes empty collections as [] and {} rather than null, as Kafka does.
func (c ConnectorInfo) MarshalJSON() ([]byte, error) {
	type plain ConnectorInfo
	p := plain(c)
	p.Config = nonNilMap(p.Config)
	if p.Tasks == nil {
		p.Tasks = []ConnectorTaskID{}
	}
	return Encode(p)
}

// ConnectorState is the connector part of ConnectorStateInfo. Trace holds the
// failure's stack trace or reason and is omitted when empty.
type ConnectorState struct {
	State    State  `json:"state"`
	WorkerID string `json:"worker_id"`
	Trace    string `json:"trace,omitempty"`
}

// TaskState is one task's status, also the body of GET .../tasks/{t}/status.
type TaskState struct {
	ID       int    `json:"id"`
	State    State  `json:"state"`
	WorkerID string `json:"worker_id"`
	Trace    string `json:"trace,omitempty"`
}

// ConnectorStateInfo answers GET /connectors/{c}/status and restart requests
// with a body.
type ConnectorStateInfo struct {
	Name      string         `json:"name"`
	Connector ConnectorState `json:"connector"`
	Tasks     []TaskState    `json:"tasks"`
	Type      ConnectorType  `json:"type"`
}

// MarshalJSON writes no tasks as [] rather than null.
func (s ConnectorStateInfo) MarshalJSON() ([]byte, error) {
	type plain ConnectorStateInfo
	p := plain(s)
	if p.Tasks == nil {
		p.Tasks = []TaskState{}
	}
	return Encode(p)
}

// ConnectorExpansion is one entry of GET /connectors?expand=...: only the
// expansions asked for are present.
type ConnectorExpansion struct {
	Status *ConnectorStateInfo `json:"status,omitempty"`
	Info   *ConnectorInfo      `json:"info,omitempty"`
}

// TaskInfo is one element of GET /connectors/{c}/tasks.
type TaskInfo struct {
	ID     ConnectorTaskID   `json:"id"`
	Config map[string]string `json:"config"`
}

// MarshalJSON writes a nil config as {}.
func (t TaskInfo) MarshalJSON() ([]byte, error) {
	type plain TaskInfo
	p := plain(t)
	p.Config = nonNilMap(p.Config)
	return Encode(p)
}

// TasksConfigMap is the deprecated tasks-config answer built from the tasks
// list: each task's config keyed by "<connector>-<task>".
func TasksConfigMap(tasks []TaskInfo) map[string]map[string]string {
	out := make(map[string]map[string]string, len(tasks))
	for _, t := range tasks {
		out[t.ID.String()] = nonNilMap(t.Config)
	}
	return out
}

// ActiveTopics is the value in GET /connectors/{c}/topics, keyed by connector name.
type ActiveTopics struct {
	Topics []string `json:"topics"`
}

// MarshalJSON writes no topics as [].
func (a ActiveTopics) MarshalJSON() ([]byte, error) {
	type plain ActiveTopics
	p := plain(a)
	if p.Topics == nil {
		p.Topics = []string{}
	}
	return Encode(p)
}

// ConnectorOffset is one source partition (or sink topic-partition) and its
// offset. A nil Offset is JSON null: in a PATCH it resets that partition.
// Sink connectors use the partition keys SinkTopicKey and SinkPartitionKey and
// the offset key SinkOffsetKey.
type ConnectorOffset struct {
	Partition map[string]any `json:"partition"`
	Offset    map[string]any `json:"offset"`
}

// Keys of the fixed sink offset shape.
const (
	SinkTopicKey     = "kafka_topic"
	SinkPartitionKey = "kafka_partition"
	SinkOffsetKey    = "kafka_offset"
)

// ConnectorOffsets answers GET /connectors/{c}/offsets and is the body of PATCH.
type ConnectorOffsets struct {
	Offsets []ConnectorOffset `json:"offsets"`
}

// MarshalJSON writes no offsets as [].
func (o ConnectorOffsets) MarshalJSON() ([]byte, error) {
	type plain ConnectorOffsets
	p := plain(o)
	if p.Offsets == nil {
		p.Offsets = []ConnectorOffset{}
	}
	return Encode(p)
}

// Message is a one-sentence answer, such as the result of altering offsets.
type Message struct {
	Message string `json:"message"`
}

// Offset modification answers (PATCH and DELETE /connectors/{c}/offsets).
// The "external" variants apply when the connector's alter-offsets hook said
// it could not account for offsets it manages itself.
const (
	MsgOffsetsAltered         = "The offsets for this connector have been altered successfully"
	MsgOffsetsReset           = "The offsets for this connector have been reset successfully"
	MsgOffsetsAlteredExternal = "The Connect framework-managed offsets for this connector have been altered successfully. " +
		"However, if this connector manages offsets externally, they will need to be manually altered in the system that the connector uses."
	MsgOffsetsResetExternal = "The Connect framework-managed offsets for this connector have been reset successfully. " +
		"However, if this connector manages offsets externally, they will need to be manually reset in the system that the connector uses."
)

// ErrorMessage is the body of every error answer; ErrorCode mirrors the HTTP status.
type ErrorMessage struct {
	ErrorCode int    `json:"error_code"`
	Message   string `json:"message"`
}

// PluginType is the lower-case kind of a plugin in PluginInfo.
type PluginType string

// Plugin types.
const (
	PluginSource          PluginType = "source"
	PluginSink            PluginType = "sink"
	PluginConverter       PluginType = "converter"
	PluginHeaderConverter PluginType = "header_converter"
	PluginTransformation  PluginType = "transformation"
	PluginPredicate       PluginType = "predicate"
)

// PluginInfo is one element of GET /connector-plugins. Version is omitted when
// the plugin does not declare one.
type PluginInfo struct {
	Class   string     `json:"class"`
	Type    PluginType `json:"type"`
	Version string     `json:"version,omitempty"`
}

// ConfigKeyInfo describes one config key of a plugin (GET
// /connector-plugins/{p}/config, and the definition half of validation).
// DefaultValue is nil when the key has no default (JSON null), and an empty
// Group is written as null, as Kafka writes a key defined without a group.
// Kafka names the position within the group "order" on the wire and writes
// it last.
type ConfigKeyInfo struct {
	Name          string
	Type          string
	Required      bool
	DefaultValue  *string
	Importance    string
	Documentation string
	Group         string
	Width         string
	DisplayName   string
	Dependents    []string
	OrderInGroup  int
}

// configKeyWire is ConfigKeyInfo's JSON form, in Kafka's field order.
type configKeyWire struct {
	Name          string   `json:"name"`
	Type          string   `json:"type"`
	Required      bool     `json:"required"`
	DefaultValue  *string  `json:"default_value"`
	Importance    string   `json:"importance"`
	Documentation string   `json:"documentation"`
	Group         *string  `json:"group"`
	Width         string   `json:"width"`
	DisplayName   string   `json:"display_name"`
	Dependents    []string `json:"dependents"`
	OrderInGroup  int      `json:"order"`
}

// MarshalJSON writes Kafka's shape: no dependents as [], no group as null.
func (k ConfigKeyInfo) MarshalJSON() ([]byte, error) {
	w := configKeyWire{Name: k.Name, Type: k.Type, Required: k.Required, DefaultValue: k.DefaultValue,
		Importance: k.Importance, Documentation: k.Documentation, Width: k.Width, DisplayName: k.DisplayName,
		Dependents: k.Dependents, OrderInGroup: k.OrderInGroup}
	if k.Group != "" {
		w.Group = &k.Group
	}
	if w.Dependents == nil {
		w.Dependents = []string{}
	}
	return Encode(w)
}

// UnmarshalJSON reads Kafka's shape, for clients of a Connect REST API.
func (k *ConfigKeyInfo) UnmarshalJSON(b []byte) error {
	var w configKeyWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*k = ConfigKeyInfo{Name: w.Name, Type: w.Type, Required: w.Required, DefaultValue: w.DefaultValue,
		Importance: w.Importance, Documentation: w.Documentation, Width: w.Width, DisplayName: w.DisplayName,
		Dependents: w.Dependents, OrderInGroup: w.OrderInGroup}
	if w.Group != nil {
		k.Group = *w.Group
	}
	return nil
}

// ConfigValueInfo is the validated value of one key. Value is nil when unset.
type ConfigValueInfo struct {
	Name              string   `json:"name"`
	Value             *string  `json:"value"`
	RecommendedValues []string `json:"recommended_values"`
	Errors            []string `json:"errors"`
	Visible           bool     `json:"visible"`
}

// MarshalJSON writes empty lists as [].
func (v ConfigValueInfo) MarshalJSON() ([]byte, error) {
	type plain ConfigValueInfo
	p := plain(v)
	if p.RecommendedValues == nil {
		p.RecommendedValues = []string{}
	}
	if p.Errors == nil {
		p.Errors = []string{}
	}
	return Encode(p)
}

// ConfigInfo pairs a key's definition with its validated value.
type ConfigInfo struct {
	Definition ConfigKeyInfo   `json:"definition"`
	Value      ConfigValueInfo `json:"value"`
}

// ConfigInfos answers PUT /connector-plugins/{p}/config/validate. Name is the
// connector class; ErrorCount counts errors over all values.
type ConfigInfos struct {
	Name       string       `json:"name"`
	ErrorCount int          `json:"error_count"`
	Groups     []string     `json:"groups"`
	Configs    []ConfigInfo `json:"configs"`
}

// MarshalJSON writes empty lists as [].
func (c ConfigInfos) MarshalJSON() ([]byte, error) {
	type plain ConfigInfos
	p := plain(c)
	if p.Groups == nil {
		p.Groups = []string{}
	}
	if p.Configs == nil {
		p.Configs = []ConfigInfo{}
	}
	return Encode(p)
}

// LoggerLevel is a logger's level and when it was last set (Unix ms; nil, JSON
// null, when it was never set through the API).
type LoggerLevel struct {
	Level        string `json:"level"`
	LastModified *int64 `json:"last_modified"`
}

// LoggerScope says whether PUT /admin/loggers/{l} applies to this worker or to
// every worker of the cluster.
type LoggerScope string

// Logger scopes.
const (
	ScopeWorker  LoggerScope = "worker"
	ScopeCluster LoggerScope = "cluster"
)

// WorkerStatus answers GET /health.
type WorkerStatus struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

// Health answers for GET /health. Starting and unhealthy answers may append a
// detail of what the worker was doing.
var (
	HealthHealthy = WorkerStatus{Status: "healthy", Message: "Worker has completed startup and is ready to handle requests."}
)

// HealthStarting is the 503 answer while the worker has not finished starting.
func HealthStarting(detail string) WorkerStatus {
	return WorkerStatus{Status: "starting", Message: withDetail("Worker is still starting up.", detail)}
}

// HealthUnhealthy is the 500 answer when a started worker did not answer the
// health check in time.
func HealthUnhealthy(detail string) WorkerStatus {
	return WorkerStatus{Status: "unhealthy", Message: withDetail(
		"Worker was unable to handle this request and may be unable to handle other requests.", detail)}
}

func withDetail(msg, detail string) string {
	if detail == "" {
		return msg
	}
	return msg + " " + detail
}

// RestartRequest is POST /connectors/{c}/restart's query.
type RestartRequest struct {
	Connector    string
	IncludeTasks bool
	OnlyFailed   bool
}

// ConnectorOnly reports the legacy form (neither flag set): restart only the
// connector instance, whatever its state, and answer 204 without a body.
func (r RestartRequest) ConnectorOnly() bool { return !r.IncludeTasks && !r.OnlyFailed }

// RestartConnector reports whether the connector instance in state s restarts.
func (r RestartRequest) RestartConnector(s State) bool { return !r.OnlyFailed || s == StateFailed }

// RestartTask reports whether a task in state s restarts.
func (r RestartRequest) RestartTask(s State) bool {
	return r.IncludeTasks && (!r.OnlyFailed || s == StateFailed)
}

// InitialState is the optional initial_state of POST /connectors. Its JSON
// form is case-insensitive; the zero value means RUNNING.
type InitialState string

// Initial states.
const (
	InitialRunning InitialState = "RUNNING"
	InitialPaused  InitialState = "PAUSED"
	InitialStopped InitialState = "STOPPED"
)

// UnmarshalJSON accepts the three states in any case, and null as unset.
func (s *InitialState) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*s = ""
		return nil
	}
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("initial_state must be a string: %w", err)
	}
	switch u := InitialState(strings.ToUpper(v)); u {
	case InitialRunning, InitialPaused, InitialStopped:
		*s = u
		return nil
	}
	return fmt.Errorf("initial_state %q is not one of RUNNING, PAUSED, STOPPED", v)
}

// Target is the target state the connector is created with.
func (s InitialState) Target() TargetState {
	switch s {
	case InitialPaused:
		return TargetPaused
	case InitialStopped:
		return TargetStopped
	}
	return TargetStarted
}

// CreateConnectorRequest is the body of POST /connectors.
type CreateConnectorRequest struct {
	Name         string       `json:"name"`
	Config       ConfigMap    `json:"config"`
	InitialState InitialState `json:"initial_state,omitempty"`
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// Encode is the JSON of an entity as Kafka's REST server writes it: compact,
// with <, > and & left as they are (json.Marshal escapes them, and the
// output of a MarshalJSON method is copied into the outer document without
// being unescaped, so the entities' own methods use it too).
func Encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
