// Package rest serves Kafka Connect's REST API over an api.Herder: every
// route, status code and error body Kafka Connect answers, plus the
// forwarding of writes from a follower to the leader.
package rest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/sluice-io/sluice/connect/api"
)

// Defaults for Config's zero values.
const (
	DefaultRequestTimeout = 90 * time.Second
	DefaultHealthTimeout  = 10 * time.Second
	// DefaultListener is where a worker listens when `listeners` is unset.
	DefaultListener = "http://127.0.0.1:8083"
	// maxBody bounds a request body: connector configs are small, and the
	// whole body is kept in memory to be forwarded if need be.
	maxBody = 16 << 20
)

// Config tunes a Handler. The zero value is usable.
type Config struct {
	// RequestTimeout bounds each request; past it the answer is 500
	// "Request timed out" (Kafka's rest.request.timeout, 90 s).
	RequestTimeout time.Duration
	// HealthTimeout bounds GET /health's check of the herder (10 s).
	HealthTimeout time.Duration
	// Client forwards requests to the leader; nil means a client with no
	// timeout of its own (the request's deadline bounds it).
	Client *http.Client
	// Logger receives forwarding and failure logs; nil discards them.
	Logger *slog.Logger
}

// Handler is the http.Handler serving the API.
type Handler struct {
	herder api.Herder
	cfg    Config
	client *http.Client
	log    *slog.Logger
	router router
}

// NewHandler returns a Handler serving herder's API.
func NewHandler(herder api.Herder, cfg Config) *Handler {
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.HealthTimeout <= 0 {
		cfg.HealthTimeout = DefaultHealthTimeout
	}
	h := &Handler{herder: herder, cfg: cfg, client: cfg.Client, log: cfg.Logger}
	if h.client == nil {
		h.client = &http.Client{}
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.routes()
	return h
}

// request is what a route handler sees.
type request struct {
	http   *http.Request
	params []string // path parameters in pattern order
	query  url.Values
	body   []byte
}

// response is what a route handler answers. A nil body writes no body.
type response struct {
	status   int
	body     any
	location string   // path of a created resource; written absolute
	raw      *relayed // a forwarded answer, relayed as the leader gave it
}

type handlerFunc func(ctx context.Context, req *request) (response, error)

func ok(body any) response { return response{status: http.StatusOK, body: body} }

// ServeHTTP routes the request, runs its handler under the request timeout
// and writes the answer or the error.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rte, params, found, allowed := h.router.match(r)
	if rte == nil {
		if found {
			w.Header().Set("Allow", joinMethods(allowed))
			writeError(w, api.Errorf(http.StatusMethodNotAllowed, "HTTP 405 Method Not Allowed"))
			return
		}
		writeError(w, api.NotFound("HTTP 404 Not Found"))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		writeError(w, api.BadRequest("Cannot read request body: %v", err))
		return
	}
	if len(body) > maxBody {
		writeError(w, api.Errorf(http.StatusRequestEntityTooLarge, "Request body is larger than %d bytes", maxBody))
		return
	}
	req := &request{http: r, params: params, query: r.URL.Query(), body: body}
	timeout := h.cfg.RequestTimeout
	if rte.health {
		// The health check bounds itself and must answer its own 503/500
		// bodies, so the request timeout only backs it up.
		timeout = h.cfg.HealthTimeout + time.Second
	}
	res, err := h.run(r.Context(), timeout, rte.fn, req)
	if err != nil {
		e := api.AsError(err)
		if e.Code >= 500 {
			h.log.Warn("connect REST request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		writeError(w, e)
		return
	}
	writeResponse(w, r, res)
}

// run calls fn with the request timeout. The answer does not wait for a
// herder that ignores its context: past the deadline it is ErrTimedOut.
func (h *Handler) run(parent context.Context, timeout time.Duration, fn handlerFunc, req *request) (response, error) {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	type result struct {
		res response
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- result{err: fmt.Errorf("panic serving %s %s: %v", req.http.Method, req.http.URL.Path, p)}
			}
		}()
		res, err := fn(ctx, req)
		var nl *api.NotLeaderError
		if errors.As(err, &nl) {
			res, err = h.forward(ctx, req, nl.LeaderURL)
		}
		if err != nil && ctx.Err() != nil && parent.Err() == nil {
			err = api.ErrTimedOut
		}
		done <- result{res, err}
	}()
	select {
	case r := <-done:
		return r.res, r.err
	case <-ctx.Done():
		return response{}, api.ErrTimedOut
	}
}

func joinMethods(ms []string) string {
	out := ""
	for i, m := range ms {
		if i > 0 {
			out += ", "
		}
		out += m
	}
	return out
}
