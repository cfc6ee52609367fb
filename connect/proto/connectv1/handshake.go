package connectv1

// The go-plugin handshake both ends use (README.md describes it for
// plugins in other languages).
const (
	// ProtocolVersion is this contract's version, negotiated through
	// PLUGIN_PROTOCOL_VERSIONS.
	ProtocolVersion = 1
	// MagicCookieKey and MagicCookieValue tell a plugin binary it was
	// started by a worker, not by hand. Not a security measure.
	MagicCookieKey   = "SLUICE_CONNECT_PLUGIN"
	MagicCookieValue = "3f1c0e0a-connect-v1"
	// PluginName is the name of the single go-plugin plugin a binary
	// serves; all three services hang off it.
	PluginName = "connect"
	// EnvConnector names the connector a plugin process serves (empty when
	// the worker runs the binary only to describe it).
	EnvConnector = "SLUICE_CONNECT_CONNECTOR"
)
