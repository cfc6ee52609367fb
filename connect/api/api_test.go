package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
)

func TestConfigMapCoercesScalars(t *testing.T) {
	var m ConfigMap
	in := `{"tasks.max": 1, "enabled": true, "rate": 2.50, "file": "/tmp/x"}`
	if err := json.Unmarshal([]byte(in), &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"tasks.max": "1", "enabled": "true", "rate": "2.50", "file": "/tmp/x"}
	if fmt.Sprint(map[string]string(m)) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", m, want)
	}
	for _, bad := range []string{`{"a": null}`, `{"a": {}}`, `{"a": [1]}`, `[]`, `"x"`} {
		if err := json.Unmarshal([]byte(bad), &m); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

func TestConfigPatchNullDeletes(t *testing.T) {
	var p ConfigPatch
	if err := json.Unmarshal([]byte(`{"a": null, "b": 2}`), &p); err != nil {
		t.Fatal(err)
	}
	got := p.Apply(map[string]string{"a": "1", "c": "3"})
	if fmt.Sprint(got) != "map[b:2 c:3]" {
		t.Fatalf("got %v", got)
	}
}

func TestInitialStateCaseInsensitive(t *testing.T) {
	for in, want := range map[string]TargetState{`"paused"`: TargetPaused, `"Stopped"`: TargetStopped, `"RUNNING"`: TargetStarted, `null`: TargetStarted} {
		var s InitialState
		if err := json.Unmarshal([]byte(in), &s); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if s.Target() != want {
			t.Errorf("%s: target %s, want %s", in, s.Target(), want)
		}
	}
	var s InitialState
	if err := json.Unmarshal([]byte(`"started"`), &s); err == nil {
		t.Error("STARTED is a target state, not an initial state, and must be refused")
	}
}

func TestRestartRequestRules(t *testing.T) {
	cases := []struct {
		r                RestartRequest
		only             bool
		conn, failedConn bool
		task, failedTask bool
	}{
		{RestartRequest{}, true, true, true, false, false},
		{RestartRequest{IncludeTasks: true}, false, true, true, true, true},
		{RestartRequest{OnlyFailed: true}, false, false, true, false, false},
		{RestartRequest{IncludeTasks: true, OnlyFailed: true}, false, false, true, false, true},
	}
	for _, c := range cases {
		if c.r.ConnectorOnly() != c.only || c.r.RestartConnector(StateRunning) != c.conn ||
			c.r.RestartConnector(StateFailed) != c.failedConn || c.r.RestartTask(StateRunning) != c.task ||
			c.r.RestartTask(StateFailed) != c.failedTask {
			t.Errorf("%+v: wrong decisions", c.r)
		}
	}
}

func TestAsError(t *testing.T) {
	if e := AsError(fmt.Errorf("wrapped: %w", ConnectorNotFound("x"))); e.Code != 404 || e.Message != "Connector x not found" {
		t.Errorf("wrapped *Error lost: %+v", e)
	}
	if e := AsError(&NotLeaderError{}); e != ErrNoLeader {
		t.Errorf("no-leader: %+v", e)
	}
	if e := AsError(errors.New("boom")); e.Code != http.StatusInternalServerError || e.Message != "boom" {
		t.Errorf("plain: %+v", e)
	}
}

func TestConfigKeyInfoWire(t *testing.T) {
	def := "1"
	k := ConfigKeyInfo{Name: "batch.size", Type: "INT", DefaultValue: &def, Importance: "LOW", Documentation: "d",
		Width: "NONE", DisplayName: "batch.size", OrderInGroup: -1}
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"name":"batch.size","type":"INT","required":false,"default_value":"1","importance":"LOW","documentation":"d","group":null,"width":"NONE","display_name":"batch.size","dependents":[],"order":-1}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	k.Group = "Common"
	b, _ = json.Marshal(k)
	var back ConfigKeyInfo
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Group != "Common" || back.OrderInGroup != -1 || *back.DefaultValue != "1" || back.Name != k.Name {
		t.Errorf("round trip lost fields: %+v", back)
	}
}
