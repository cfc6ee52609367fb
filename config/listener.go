package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Listener is one NAME://host:port entry of listeners or advertised.listeners.
type Listener struct {
	// Name is the listener name, upper-cased as Kafka does. Its security
	// protocol comes from listener.security.protocol.map; only PLAINTEXT is
	// served so far, so every listener a loaded configuration holds is
	// PLAINTEXT whatever its name.
	Name string
	Host string // empty means every interface (listeners) or "let the broker decide" (advertised)
	Port int    // 0 asks the OS for a free port (useful in tests)
}

// Addr returns host:port, suitable for net.Listen.
func (l Listener) Addr() string { return net.JoinHostPort(l.Host, strconv.Itoa(l.Port)) }

// String returns the listener in NAME://host:port form.
func (l Listener) String() string { return l.Name + "://" + l.Addr() }

// servedProtocol is the one security protocol Sluice can serve.
const servedProtocol = "PLAINTEXT"

// securityProtocols are Kafka's security protocols, the values
// listener.security.protocol.map may name.
var securityProtocols = []string{"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}

// ParseListeners parses a comma-separated list of NAME://host:port entries
// as Kafka's default listener.security.protocol.map reads them: the name
// is the security protocol, and only PLAINTEXT is served. IPv6 hosts are
// written in brackets ("PLAINTEXT://[::1]:9092"). Names must be unique; the
// list must not be empty. Load reads listeners with the configured map
// instead, so there other names (CONTROLLER, INTERNAL, ...) are allowed.
func ParseListeners(v string) ([]Listener, error) {
	ls, err := parseListenerList(v)
	if err != nil {
		return nil, err
	}
	if err := checkServed(v, ls, defaultProtocolMap); err != nil {
		return nil, err
	}
	return ls, nil
}

// parseListenerList parses the syntax of a listeners value: unique names,
// host:port addresses, ports in range, and no two listeners on the same
// non-zero port (Kafka's rule; one port cannot serve two listeners).
func parseListenerList(v string) ([]Listener, error) {
	items := splitList(v)
	if len(items) == 0 {
		return nil, fmt.Errorf("%q: no listener given", v)
	}
	out := make([]Listener, 0, len(items))
	names := map[string]bool{}
	ports := map[int]string{}
	for _, it := range items {
		l, err := parseListener(it)
		if err != nil {
			return nil, err
		}
		if names[l.Name] {
			return nil, fmt.Errorf("%q: listener name %s appears twice", v, l.Name)
		}
		names[l.Name] = true
		if other, dup := ports[l.Port]; dup && l.Port != 0 {
			return nil, fmt.Errorf("%q: listeners %s and %s both use port %d", v, other, l.Name, l.Port)
		}
		ports[l.Port] = l.Name
		out = append(out, l)
	}
	return out, nil
}

func parseListener(s string) (Listener, error) {
	name, addr, ok := strings.Cut(s, "://")
	if !ok || name == "" {
		return Listener{}, fmt.Errorf("%q is not of the form NAME://host:port", s)
	}
	host, port, err := splitHostPort(addr)
	if err != nil {
		return Listener{}, fmt.Errorf("%q: %v", s, err)
	}
	return Listener{Name: strings.ToUpper(name), Host: host, Port: port}, nil
}

// splitHostPort parses host:port with a port from 0 to 65535.
func splitHostPort(addr string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%q is not host:port", addr)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("port %q is not a number from 0 to 65535", portStr)
	}
	return host, port, nil
}

// checkServed checks that every listener's name is in the protocol map
// and maps to the protocol Sluice serves. v is the value, for messages.
func checkServed(v string, ls []Listener, protocols map[string]string) error {
	for _, l := range ls {
		p, ok := protocols[l.Name]
		switch {
		case !ok:
			return fmt.Errorf("%q: listener %s is not in listener.security.protocol.map; map it (%s:PLAINTEXT) or rename it", v, l.Name, l.Name)
		case p != servedProtocol:
			return fmt.Errorf("%q: listener %s is not supported: its security protocol is %s and only %s is served so far", v, l.Name, p, servedProtocol)
		}
	}
	return nil
}
