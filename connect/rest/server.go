package rest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/sluice-io/sluice/connect/api"
)

// Server serves the API on the worker's `listeners`.
type Server struct {
	handler   http.Handler
	listeners []string
	log       func(msg string, args ...any)

	mu   sync.Mutex
	srv  *http.Server
	lns  []net.Listener
	urls []string
	wg   sync.WaitGroup
	done bool
}

// ParseListeners reads Kafka's `listeners` value: a comma-separated list of
// http://host:port URLs. An empty host listens on every interface; port 0
// picks a free port. Only http is served.
func ParseListeners(s string) ([]string, error) {
	var out []string
	for _, l := range strings.Split(s, ",") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if _, err := listenAddr(l); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("listeners %q: no listener", s)
	}
	return out, nil
}

func listenAddr(listener string) (string, error) {
	u, err := url.Parse(listener)
	if err != nil {
		return "", fmt.Errorf("listener %q: %w", listener, err)
	}
	if u.Scheme != "http" {
		return "", fmt.Errorf("listener %q: scheme %q is not supported (only http)", listener, u.Scheme)
	}
	if u.Port() == "" || (u.Path != "" && u.Path != "/") {
		return "", fmt.Errorf("listener %q: want http://host:port", listener)
	}
	return net.JoinHostPort(u.Hostname(), u.Port()), nil
}

// NewServer returns a Server for herder on listeners (DefaultListener when
// empty). It does not listen until Start.
func NewServer(herder api.Herder, listeners []string, cfg Config) (*Server, error) {
	if len(listeners) == 0 {
		listeners = []string{DefaultListener}
	}
	for _, l := range listeners {
		if _, err := listenAddr(l); err != nil {
			return nil, err
		}
	}
	s := &Server{handler: NewHandler(herder, cfg), listeners: listeners, log: func(string, ...any) {}}
	if cfg.Logger != nil {
		s.log = cfg.Logger.Error
	}
	return s, nil
}

// Start binds every listener and serves them in the background. If one
// cannot be bound, none stays open.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil || s.done {
		return errors.New("connect REST server already started")
	}
	var lns []net.Listener
	for _, l := range s.listeners {
		addr, _ := listenAddr(l)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, o := range lns {
				_ = o.Close()
			}
			return fmt.Errorf("connect REST listener %s: %w", l, err)
		}
		lns = append(lns, ln)
	}
	s.srv = &http.Server{Handler: s.handler, ReadHeaderTimeout: 30 * time.Second}
	s.lns = lns
	for i, ln := range lns {
		u, _ := url.Parse(s.listeners[i])
		host := u.Hostname()
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		s.urls = append(s.urls, "http://"+net.JoinHostPort(host, port))
		s.wg.Add(1)
		go func(ln net.Listener) {
			defer s.wg.Done()
			if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log("connect REST listener stopped", "addr", ln.Addr().String(), "err", err)
			}
		}(ln)
	}
	return nil
}

// URLs returns the listeners as bound, with ports chosen for port 0 filled
// in (an empty host stays empty). Nil before Start.
func (s *Server) URLs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.urls...)
}

// Shutdown stops accepting requests and waits, until ctx ends, for those in
// flight to finish.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	srv := s.srv
	s.done = true
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Shutdown(ctx)
	s.wg.Wait()
	return err
}

// Close stops the server at once, dropping requests in flight.
func (s *Server) Close() error {
	s.mu.Lock()
	srv := s.srv
	s.done = true
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Close()
	s.wg.Wait()
	return err
}
