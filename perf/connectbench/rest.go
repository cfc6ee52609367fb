package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// restClient talks to the worker's Kafka Connect REST API.
type restClient struct {
	base string
	http *http.Client
}

func newRESTClient(base string) *restClient {
	return &restClient{base: base, http: &http.Client{Timeout: 30 * time.Second}}
}

// do sends one request, retrying 409 (a rebalance is underway, as while
// the worker joins its group) for up to 30 s as Connect clients do, and
// decodes a JSON answer into out when it is not nil.
func (c *restClient) do(ctx context.Context, method, path string, body, out any) (int, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, b, err := c.once(ctx, method, path, body)
		if err != nil {
			return 0, err
		}
		if code == http.StatusConflict && time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		if code >= 300 {
			return code, fmt.Errorf("%s %s: %d %s", method, path, code, bytes.TrimSpace(b))
		}
		if out != nil && len(b) > 0 {
			if err := json.Unmarshal(b, out); err != nil {
				return code, fmt.Errorf("%s %s: %w", method, path, err)
			}
		}
		return code, nil
	}
}

func (c *restClient) once(ctx context.Context, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// create POSTs a connector.
func (c *restClient) create(ctx context.Context, name string, config map[string]string) error {
	_, err := c.do(ctx, "POST", "/connectors", map[string]any{"name": name, "config": config}, nil)
	return err
}

func (c *restClient) delete(ctx context.Context, name string) error {
	_, err := c.do(ctx, "DELETE", "/connectors/"+name, nil, nil)
	return err
}

// waitRunning waits until the connector and all its tasks are RUNNING; a
// FAILED one ends the wait with its trace.
func (c *restClient) waitRunning(ctx context.Context, name string, within time.Duration) error {
	var st struct {
		Connector struct {
			State string `json:"state"`
			Trace string `json:"trace"`
		} `json:"connector"`
		Tasks []struct {
			ID    int    `json:"id"`
			State string `json:"state"`
			Trace string `json:"trace"`
		} `json:"tasks"`
	}
	deadline := time.Now().Add(within)
	for {
		code, b, err := c.once(ctx, "GET", "/connectors/"+name+"/status", nil)
		if err != nil {
			return err
		}
		if code == http.StatusOK && json.Unmarshal(b, &st) == nil {
			if st.Connector.State == "FAILED" {
				return fmt.Errorf("connector %s failed: %s", name, st.Connector.Trace)
			}
			running := st.Connector.State == "RUNNING" && len(st.Tasks) > 0
			for _, t := range st.Tasks {
				if t.State == "FAILED" {
					return fmt.Errorf("connector %s task %d failed: %s", name, t.ID, t.Trace)
				}
				running = running && t.State == "RUNNING"
			}
			if running {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("connector %s not running after %s (last status %d: %s)", name, within, code, bytes.TrimSpace(b))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// scrape fetches the worker's /metrics text.
func scrape(ctx context.Context, cl *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := cl.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return io.ReadAll(resp.Body)
}
