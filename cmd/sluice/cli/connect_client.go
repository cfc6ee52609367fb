package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"
)

// connectClient sends requests to one Connect REST endpoint.
type connectClient struct {
	base string // scheme://host[:port][/prefix], without a trailing slash
	// user is the URL's user:password, sent as basic auth (Kafka's
	// BasicAuthSecurityRestExtension) and kept out of base, which
	// messages show.
	user *url.Userinfo
	http *http.Client
	// A 409 is a worker saying "not now": a rebalance is underway or its
	// config is stale. Kafka's own clients and operators (Strimzi, kcctl)
	// retry it; so do we, attempts times in all, waiting backoff, then
	// twice that, up to maxBackoff, within the command's deadline.
	attempts            int
	backoff, maxBackoff time.Duration
}

// The 409 retry schedule: 250ms, 500ms, 1s, 2s, 2s between six
// attempts, under 6s in all. Tests shorten it.
var (
	connectAttempts = 6
	connectBackoff  = 250 * time.Millisecond
)

// newConnectClient resolves the endpoint (flag, then $SLUICE_CONNECT_URL,
// then the default) and accepts a bare host:port as http.
func newConnectClient(flagValue string) (*connectClient, error) {
	raw, from := flagValue, "--url"
	if raw == "" {
		raw, from = os.Getenv(connectURLEnv), "$"+connectURLEnv
	}
	if raw == "" {
		raw = defaultConnectURL
	}
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return nil, usagef("%s: %q is not an http(s)://host:port URL", from, raw)
	}
	return &connectClient{
		base:       strings.TrimRight(u.Scheme+"://"+u.Host+u.EscapedPath(), "/"),
		user:       u.User,
		http:       &http.Client{},
		attempts:   connectAttempts,
		backoff:    connectBackoff,
		maxBackoff: 8 * connectBackoff,
	}, nil
}

// connectError is an error answer of a worker. Kafka's bodies are
// {"error_code":N,"message":"..."}; anything else in front of the worker
// (a proxy's HTML page) still yields the status and the body's start.
type connectError struct {
	status       int // HTTP status
	message      string
	body         []byte // the whole answer, for routes whose errors carry more
	method, path string
}

func (e *connectError) Error() string {
	generic := fmt.Sprintf("HTTP %d %s", e.status, http.StatusText(e.status))
	if e.message == generic {
		// Jersey's own answer, to a route or method the worker lacks
		// (an older Kafka); the request says more than the message.
		return fmt.Sprintf("the worker answered %s %s with %s", e.method, e.path, generic)
	}
	return fmt.Sprintf("%s (%s)", e.message, generic)
}

func newConnectError(status int, body []byte) *connectError {
	var eb struct {
		ErrorCode int     `json:"error_code"`
		Message   *string `json:"message"`
	}
	if json.Unmarshal(body, &eb) == nil && eb.Message != nil {
		return &connectError{status: status, message: oneLine(*eb.Message), body: body}
	}
	msg := oneLine(string(body))
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	if msg == "" {
		msg = "the worker answered " + http.StatusText(status) + " with no message"
	}
	return &connectError{status: status, message: msg, body: body}
}

// isStatus reports whether err is a worker's answer with that status.
func isStatus(err error, status int) bool {
	var ce *connectError
	return errors.As(err, &ce) && ce.status == status
}

// connectResponse is a successful answer.
type connectResponse struct {
	status int
	body   []byte
}

// connectPath joins escaped segments: a connector name may hold any character,
// "/" included, and each must stay one segment.
func connectPath(segments ...string) string {
	var b strings.Builder
	for _, s := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

// do sends one request, retrying 409s, and returns the answer if its
// status is 2xx. body, if not nil, is sent as JSON.
func (c *connectClient) do(ctx context.Context, method, path string, query url.Values, body any) (*connectResponse, error) {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return nil, fmt.Errorf("encoding the request body: %w", err)
		}
	}
	target := c.base + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	wait := c.backoff
	for attempt := 1; ; attempt++ {
		resp, err := c.once(ctx, method, target, payload)
		if !retryable(err) {
			return resp, err
		}
		if attempt >= c.attempts {
			return nil, fmt.Errorf("%w; gave up after %d attempts", err, attempt)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w; gave up at the --timeout deadline after %d attempts", err, attempt)
		case <-t.C:
		}
		wait = min(2*wait, c.maxBackoff)
	}
}

// retryable reports whether err is a 409 that a later attempt may not
// get. POST /connectors answers 409 for a name that is taken too, which no
// wait changes.
func retryable(err error) bool {
	var ce *connectError
	return errors.As(err, &ce) && ce.status == http.StatusConflict && !strings.Contains(ce.message, "already exists")
}

func (c *connectClient) once(ctx context.Context, method, target string, payload []byte) (*connectResponse, error) {
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, target, err)
	}
	req.Header.Set("Accept", "application/json")
	if c.user != nil {
		pw, _ := c.user.Password()
		req.SetBasicAuth(c.user.Username(), pw)
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("nothing listens at %s: is a Connect worker running there? (set --url or $%s)", c.base, connectURLEnv)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%s %s: %w", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading the answer: %w", method, target, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		ce := newConnectError(resp.StatusCode, b)
		ce.method, ce.path = method, req.URL.RequestURI()
		return nil, ce
	}
	return &connectResponse{status: resp.StatusCode, body: b}, nil
}

// getJSON sends a GET and decodes its answer into v.
func (c *connectClient) getJSON(ctx context.Context, path string, query url.Values, v any) ([]byte, error) {
	resp, err := c.do(ctx, http.MethodGet, path, query, nil)
	if err != nil {
		return nil, err
	}
	return resp.body, resp.decode(v)
}

func (r *connectResponse) decode(v any) error {
	if err := json.Unmarshal(r.body, v); err != nil {
		return fmt.Errorf("the worker's answer is not the JSON expected: %w", err)
	}
	return nil
}

// writeRawJSON prints a worker's JSON answer indented, keeping its order
// and numbers exactly; an empty answer (204) prints nothing.
func writeRawJSON(w io.Writer, body []byte) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	var out bytes.Buffer
	if err := json.Indent(&out, body, "", "  "); err != nil {
		return fmt.Errorf("the worker's answer is not JSON: %w", err)
	}
	out.WriteByte('\n')
	_, err := w.Write(out.Bytes())
	return err
}
