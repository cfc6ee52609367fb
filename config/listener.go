package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Listener is one NAME://host:port entry of listeners or advertised.listeners.
type Listener struct {
	Name string // listener name, which is also its security protocol; only PLAINTEXT for now
	Host string // empty means every interface (listeners) or "let the broker decide" (advertised)
	Port int    // 0 asks the OS for a free port (useful in tests)
}

// Addr returns host:port, suitable for net.Listen.
func (l Listener) Addr() string { return net.JoinHostPort(l.Host, strconv.Itoa(l.Port)) }

// String returns the listener in NAME://host:port form.
func (l Listener) String() string { return l.Name + "://" + l.Addr() }

// supportedProtocols lists listener names Sluice can serve.
var supportedProtocols = []string{"PLAINTEXT"}

// ParseListeners parses a comma-separated list of NAME://host:port entries.
// IPv6 hosts are written in brackets ("PLAINTEXT://[::1]:9092"). Names must
// be unique and, for now, PLAINTEXT; the list must not be empty.
func ParseListeners(v string) ([]Listener, error) {
	items := splitList(v)
	if len(items) == 0 {
		return nil, fmt.Errorf("%q: no listener given", v)
	}
	out := make([]Listener, 0, len(items))
	seen := map[string]bool{}
	for _, it := range items {
		l, err := parseListener(it)
		if err != nil {
			return nil, err
		}
		if seen[l.Name] {
			return nil, fmt.Errorf("%q: listener name %s appears twice", v, l.Name)
		}
		seen[l.Name] = true
		out = append(out, l)
	}
	return out, nil
}

func parseListener(s string) (Listener, error) {
	name, addr, ok := strings.Cut(s, "://")
	if !ok || name == "" {
		return Listener{}, fmt.Errorf("%q is not of the form NAME://host:port", s)
	}
	name = strings.ToUpper(name)
	if !contains(supportedProtocols, name) {
		return Listener{}, fmt.Errorf("%q: listener %s is not supported (only %s)", s, name, strings.Join(supportedProtocols, ", "))
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return Listener{}, fmt.Errorf("%q: %q is not host:port", s, addr)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return Listener{}, fmt.Errorf("%q: port %q is not a number from 0 to 65535", s, portStr)
	}
	return Listener{Name: name, Host: host, Port: port}, nil
}
