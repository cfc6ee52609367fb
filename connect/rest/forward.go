package rest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/sluice-io/sluice/connect/api"
)

// forwardParam is the hidden query parameter workers add to a forwarded
// request. Absent: the request came from a client, and may be forwarded
// with forward=true. true: it came from a worker, and may be forwarded once
// more with forward=false. false: the second hop did not reach the leader
// either, so the cluster is in flux and the answer is a 409.
const forwardParam = "forward"

// relayed is the leader's answer to a forwarded request.
type relayed struct {
	status   int
	header   http.Header
	body     []byte
	location string // path of the leader's Location header, if any
}

// forward sends req to the leader at leaderURL and returns its answer to be
// relayed, or the 409 Kafka answers when no hop is left or no leader is known.
func (h *Handler) forward(ctx context.Context, req *request, leaderURL string) (response, error) {
	hop, present := req.query[forwardParam]
	if present && !strings.EqualFold(firstOf(hop), "true") {
		h.log.Warn("connect REST request did not reach the leader within two hops",
			"method", req.http.Method, "path", req.http.URL.Path)
		return response{}, api.ErrForwardLoop
	}
	if leaderURL == "" {
		return response{}, api.ErrNoLeader
	}
	base, err := url.Parse(leaderURL)
	if err != nil || base.Host == "" {
		return response{}, api.Internal("Invalid leader URL %q", leaderURL)
	}
	q := url.Values{}
	for k, v := range req.query {
		if k != forwardParam {
			q[k] = v
		}
	}
	q.Set(forwardParam, strconv.FormatBool(!present))
	target := *base
	target.Path = strings.TrimSuffix(base.Path, "/") + req.http.URL.Path
	target.RawPath = ""
	if req.http.URL.RawPath != "" {
		target.RawPath = strings.TrimSuffix(base.EscapedPath(), "/") + req.http.URL.RawPath
	}
	target.RawQuery = q.Encode()

	var body io.Reader
	if len(req.body) > 0 {
		body = bytes.NewReader(req.body)
	}
	out, err := http.NewRequestWithContext(ctx, req.http.Method, target.String(), body)
	if err != nil {
		return response{}, api.Internal("Cannot forward REST request: %v", err)
	}
	out.Header.Set("Content-Type", "application/json")
	out.Header.Set("Accept", "application/json")
	if a := req.http.Header.Get("Authorization"); a != "" {
		out.Header.Set("Authorization", a)
	}
	h.log.Debug("forwarding connect REST request to the leader", "method", out.Method, "url", target.String())
	resp, err := h.client.Do(out)
	if err != nil {
		if ctx.Err() != nil {
			return response{}, api.ErrTimedOut
		}
		return response{}, api.Internal("IO Error trying to forward REST request: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return response{}, api.Internal("IO Error trying to forward REST request: %v", err)
	}
	rl := &relayed{status: resp.StatusCode, header: http.Header{}, body: b}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		rl.header.Set("Content-Type", ct)
	}
	if loc := resp.Header.Get("Location"); loc != "" {
		if u, err := url.Parse(loc); err == nil {
			rl.location = u.EscapedPath()
		}
	}
	return response{raw: rl}, nil
}

// write relays the leader's answer. Location is rebuilt against this
// worker's URL, as the client asked this worker.
func (rl *relayed) write(w http.ResponseWriter, r *http.Request) {
	for k, v := range rl.header {
		w.Header()[k] = v
	}
	if rl.location != "" {
		w.Header().Set("Location", absolute(r, rl.location))
	}
	if len(rl.body) > 0 {
		w.Header().Set("Content-Length", strconv.Itoa(len(rl.body)))
	}
	w.WriteHeader(rl.status)
	_, _ = w.Write(rl.body)
}

func firstOf(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}
