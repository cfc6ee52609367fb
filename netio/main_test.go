package netio

import (
	"os"
	"testing"
)

// TestMain lets the engine self-test re-execute this test binary as its
// probe client (ProbeClientMain), as the sluice binary does.
func TestMain(m *testing.M) {
	ProbeClientMain()
	os.Exit(m.Run())
}
