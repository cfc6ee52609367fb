package config

import (
	"os"
	"strings"
	"testing"
)

const docPath = "../docs/configuration.md"

// TestConfigurationDocUpToDate fails when the generated part of
// docs/configuration.md no longer matches the settings tables. Run
// `make docs` (SLUICE_UPDATE_DOCS=1) to rewrite it.
func TestConfigurationDocUpToDate(t *testing.T) {
	data, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	i := strings.Index(doc, ReferenceBegin)
	j := strings.Index(doc, ReferenceEnd)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the generated-section markers", docPath)
	}
	want := "\n\n" + Reference() + "\n"
	got := doc[i+len(ReferenceBegin) : j]
	if got == want {
		return
	}
	if os.Getenv("SLUICE_UPDATE_DOCS") == "1" {
		doc = doc[:i+len(ReferenceBegin)] + want + doc[j:]
		if err := os.WriteFile(docPath, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote %s", docPath)
		return
	}
	t.Errorf("%s is out of date with the settings table; run `make docs`", docPath)
}
