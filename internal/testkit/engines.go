package testkit

import (
	"hash/fnv"
	"testing"
)

// EngineNames are the network engines, in the order Engines.Run runs them:
// netio.EngineStd and netio.EngineUring (netio's tests check that these
// are its names; testkit cannot import netio, whose own tests use it).
var EngineNames = []string{"std", "uring"}

// Engines is the table of network engines a wire-level test runs on: the
// broker must behave the same on each.
type Engines struct {
	// Unavailable says why engine cannot run on this machine (nil when it
	// can); the engine's subtest is then skipped with that reason. Nil
	// means every engine can run.
	Unavailable func(engine string) error
	// OneUnderShort, under -short, runs each test on one engine only,
	// chosen by a hash of the test's name, so a suite still exercises
	// every engine end to end in a fraction of the time; without -short
	// every test runs on every engine.
	OneUnderShort bool
}

// Run runs fn once per engine, as subtests named engine=<name>.
func (e Engines) Run(t *testing.T, fn func(t *testing.T, engine string)) {
	engines := EngineNames
	if e.OneUnderShort && testing.Short() {
		h := fnv.New32a()
		h.Write([]byte(t.Name()))
		i := int(h.Sum32() % uint32(len(engines)))
		engines = engines[i : i+1]
	}
	for _, engine := range engines {
		t.Run("engine="+engine, func(t *testing.T) {
			if e.Unavailable != nil {
				if err := e.Unavailable(engine); err != nil {
					t.Skipf("engine %s unavailable: %v", engine, err)
				}
			}
			fn(t, engine)
		})
	}
}
