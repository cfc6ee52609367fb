package voter

import (
	"testing"

	"github.com/sluice-io/sluice/caspaxos"
	"github.com/sluice-io/sluice/segment"
)

// BenchmarkPersist is the cost an acceptor adds to each Prepare or Accept
// that changes its state: one atomic replacement of the state file.
func BenchmarkPersist(b *testing.B) {
	for _, fs := range []struct {
		name string
		fsys segment.FS
		dir  string
	}{{"memfs", segment.NewMemFS(), "/v"}, {"disk", segment.OSFS(), b.TempDir()}} {
		b.Run(fs.name, func(b *testing.B) {
			s := store{fsys: fs.fsys, dir: fs.dir}
			st, _, _, err := s.open(1)
			if err != nil {
				b.Fatal(err)
			}
			st.Value = make([]byte, 200) // about a three-voter register
			for i := 0; b.Loop(); i++ {
				st.Promised = caspaxos.Ballot{Counter: uint64(i + 1), Proposer: 1}
				if err := s.save(st, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
