package api

import "context"

// Herder is what the REST API needs from a worker: one method per route.
// connect/runtime implements it for standalone and distributed mode.
//
// Errors: return *Error (see the constructors) for any answer other than 500;
// a plain error answers 500 with its text. A follower in distributed mode
// returns *NotLeaderError for a request only the leader performs, and
// connect/rest forwards the request to the leader. Methods should honour ctx:
// connect/rest cancels it when the request times out, and answers
// ErrTimedOut whether or not the method has returned.
type Herder interface {
	// Connectors lists the names of all connectors, sorted.
	Connectors(ctx context.Context) ([]string, error)
	// ConnectorInfo describes one connector (ConnectorNotFound if unknown).
	ConnectorInfo(ctx context.Context, name string) (*ConnectorInfo, error)
	// ConnectorStatus is the connector's and its tasks' runtime state.
	ConnectorStatus(ctx context.Context, name string) (*ConnectorStateInfo, error)

	// CreateConnector creates a connector with the given config (already
	// holding "name") and initial target state; ConnectorExists if the name is taken.
	CreateConnector(ctx context.Context, name string, config map[string]string, initial TargetState) (*ConnectorInfo, error)
	// PutConnectorConfig creates or replaces a connector's config; created
	// reports whether the connector is new.
	PutConnectorConfig(ctx context.Context, name string, config map[string]string) (info *ConnectorInfo, created bool, err error)
	// PatchConnectorConfig merges patch into an existing connector's config.
	PatchConnectorConfig(ctx context.Context, name string, patch ConfigPatch) (*ConnectorInfo, error)
	// DeleteConnector removes a connector and its tasks.
	DeleteConnector(ctx context.Context, name string) error
	// ConnectorConfig is the connector's current config.
	ConnectorConfig(ctx context.Context, name string) (map[string]string, error)

	// TaskConfigs lists the connector's tasks with their configs.
	TaskConfigs(ctx context.Context, name string) ([]TaskInfo, error)
	// TasksConfig is the deprecated tasks-config map, keyed by
	// ConnectorTaskID.String() ("<connector>-<task>").
	TasksConfig(ctx context.Context, name string) (map[string]map[string]string, error)
	// TaskStatus is one task's state (TaskNotFound if the connector has no such task).
	TaskStatus(ctx context.Context, id ConnectorTaskID) (*TaskState, error)

	// RestartConnector restarts per req. When req.ConnectorOnly() it restarts
	// just the connector instance and returns nil; otherwise it returns the
	// status with the instances it restarts shown as RESTARTING.
	RestartConnector(ctx context.Context, req RestartRequest) (*ConnectorStateInfo, error)
	// RestartTask restarts one task.
	RestartTask(ctx context.Context, id ConnectorTaskID) error
	// PauseConnector sets the target state PAUSED (idempotent).
	PauseConnector(ctx context.Context, name string) error
	// ResumeConnector sets the target state STARTED, from PAUSED or STOPPED.
	ResumeConnector(ctx context.Context, name string) error
	// StopConnector sets the target state STOPPED, shutting tasks down (idempotent).
	StopConnector(ctx context.Context, name string) error

	// ConnectorTopics lists the topics the connector has used since its last
	// reset; Errorf(403, ...) when topic tracking is disabled.
	ConnectorTopics(ctx context.Context, name string) ([]string, error)
	// ResetConnectorTopics forgets the connector's used topics.
	ResetConnectorTopics(ctx context.Context, name string) error

	// ConnectorOffsets is the connector's committed offsets.
	ConnectorOffsets(ctx context.Context, name string) (*ConnectorOffsets, error)
	// AlterConnectorOffsets writes offsets (nil Offset resets a partition) of a
	// STOPPED connector (NotStopped otherwise) and returns the answer's message,
	// one of the MsgOffsets* constants.
	AlterConnectorOffsets(ctx context.Context, name string, offsets []ConnectorOffset) (string, error)
	// ResetConnectorOffsets removes all offsets of a STOPPED connector and
	// returns the answer's message.
	ResetConnectorOffsets(ctx context.Context, name string) (string, error)

	// Plugins lists installed plugins: connectors only, or also converters,
	// transformations and predicates.
	Plugins(ctx context.Context, connectorsOnly bool) ([]PluginInfo, error)
	// PluginConfig describes a plugin's config keys, by class name or alias.
	PluginConfig(ctx context.Context, plugin string) ([]ConfigKeyInfo, error)
	// ValidateConfig validates a connector config (its connector.class names
	// the plugin). Validation errors are in the result, not in err.
	ValidateConfig(ctx context.Context, config map[string]string) (*ConfigInfos, error)

	// Loggers lists the loggers whose level was set explicitly.
	Loggers(ctx context.Context) (map[string]LoggerLevel, error)
	// Logger is one logger's level; nil when there is no such logger.
	Logger(ctx context.Context, name string) (*LoggerLevel, error)
	// SetLoggerLevel sets a logger's level (an upper-case log4j level name).
	// With ScopeWorker it returns the loggers it changed on this worker; with
	// ScopeCluster it asks every worker to do so and returns nil.
	SetLoggerLevel(ctx context.Context, name, level string, scope LoggerScope) ([]string, error)

	// HealthCheck returns nil once the worker's main loop has answered, which
	// shows it is started and not stuck.
	HealthCheck(ctx context.Context) error
	// Ready reports whether the worker finished starting; a health check that
	// times out is "starting" (503) before and "unhealthy" (500) after.
	Ready() bool
	// ServerInfo is the answer to GET /.
	ServerInfo(ctx context.Context) (ServerInfo, error)
}

// Answers the herder returns for topic tracking turned off by the worker's
// topic.tracking.enable and topic.tracking.allow.reset.
var (
	ErrTopicTrackingDisabled = Errorf(403, "Topic tracking is disabled.")
	ErrTopicResetDisabled    = Errorf(403, "Topic tracking reset is disabled.")
)
