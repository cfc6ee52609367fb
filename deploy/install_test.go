package deploy

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/sluice-io/sluice/config"
)

// The unit's configuration works as shipped: it loads, and the address it
// advertises is one a client can connect to (not a placeholder host, not
// the wildcard), so "systemctl enable --now" before any edit gives a broker
// that serves clients on this machine rather than one that says ready
// while every client hangs.
func TestShippedConfigServesClientsAsIs(t *testing.T) {
	cfg, err := config.Load("systemd/server.properties", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range cfg.AdvertisedListeners {
		if l.Host == "" || l.Host == "0.0.0.0" || l.Host == "::" || strings.Contains(l.Host, "example.") {
			t.Errorf("advertised listener %s is not an address a client can connect to", l)
		}
	}
}

// Where the file binds, or shows how to bind, every interface, the comment
// above says there is no authentication.
func TestWildcardBindIsWarnedAbout(t *testing.T) {
	body, err := os.ReadFile("systemd/server.properties")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(body), "\n")
	for i, line := range lines {
		if !strings.Contains(line, "listeners=PLAINTEXT://0.0.0.0") {
			continue
		}
		var comment strings.Builder
		for j := i - 1; j >= 0 && strings.HasPrefix(lines[j], "#"); j-- {
			comment.WriteString(lines[j])
		}
		if !strings.Contains(comment.String(), "no authentication") {
			t.Errorf("line %d binds every interface without a warning that there is no authentication", i+1)
		}
	}
}

// The install instructions have the user edit the configuration before the
// first start, and the Grafana instructions match the dashboard: it
// declares no import inputs, so the import must not be said to ask for a
// data source.
func TestReadmeMatchesFiles(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(string(readme)), " ") // wrapping aside
	edit, start := strings.Index(text, "edit `/etc/sluice/server.properties` before"), strings.Index(text, "systemctl enable --now")
	if edit < 0 || start < 0 || edit > start {
		t.Errorf("README: the edit step (at %d) must come before systemctl enable --now (at %d)", edit, start)
	}
	raw, err := os.ReadFile("grafana/sluice.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]json.RawMessage
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	if _, ok := dash["__inputs"]; !ok && !strings.Contains(text, "the import asks for no data source") {
		t.Error("README: the dashboard has no __inputs, so its import asks for no data source; the README must say so")
	}
}
