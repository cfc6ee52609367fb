package broker

import (
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/sluice-io/sluice/config"
	"github.com/sluice-io/sluice/segment"
)

// The epoch a clean shutdown leaves in its markers is the one the next
// registration sends as PreviousBrokerEpoch; anything that is not the
// same clean epoch in every log directory reads as an unclean stop.
func TestPreviousBrokerEpochFromTheMarkers(t *testing.T) {
	write := func(t *testing.T, fsys segment.FS, dir string, data []byte) {
		t.Helper()
		if err := fsys.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := segment.WriteFileAtomic(fsys, filepath.Join(dir, cleanShutdownFile), data); err != nil {
			t.Fatal(err)
		}
	}
	dirs := []string{"/a", "/b"}
	for _, tc := range []struct {
		name    string
		markers map[string][]byte // dir to content; absent: no marker
		want    int64
	}{
		{"every directory names the epoch", map[string][]byte{"/a": cleanShutdownMarker(42), "/b": cleanShutdownMarker(42)}, 42},
		{"one directory died with the process", map[string][]byte{"/a": cleanShutdownMarker(42)}, -1},
		{"directories of different runs", map[string][]byte{"/a": cleanShutdownMarker(42), "/b": cleanShutdownMarker(7)}, -1},
		{"an older Sluice's empty marker", map[string][]byte{"/a": nil, "/b": nil}, -1},
		{"a shutdown never registered elsewhere", map[string][]byte{"/a": cleanShutdownMarker(-1), "/b": cleanShutdownMarker(-1)}, -1},
		{"a damaged marker", map[string][]byte{"/a": cleanShutdownMarker(42), "/b": []byte(`{"version":0,"broker_ep`)}, -1},
		{"a marker of a later format", map[string][]byte{"/a": []byte(`{"version":1,"broker_epoch":42}`), "/b": []byte(`{"version":1,"broker_epoch":42}`)}, -1},
		{"no marker at all", nil, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := segment.NewMemFS()
			for _, d := range dirs {
				if err := fsys.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for d, data := range tc.markers {
				write(t, fsys, d, data)
			}
			if got := previousBrokerEpoch(fsys, dirs); got != tc.want {
				t.Errorf("previous broker epoch %d, want %d", got, tc.want)
			}
		})
	}
}

// epochLink stands for a controller link: it gives this node's epoch and
// takes the previous one.
type epochLink struct {
	MetadataSource
	epoch, previous int64
}

func (l *epochLink) BrokerEpoch() int64                 { return l.epoch }
func (l *epochLink) SetPreviousBrokerEpoch(epoch int64) { l.previous = epoch }

// A stop writes the link's epoch; the next start hands it back to the link
// before it registers.
func TestCleanShutdownEpochRoundTrip(t *testing.T) {
	fsys := segment.NewMemFS()
	dirs := []string{"/a", "/b"}
	link := &epochLink{epoch: 1234, previous: -7}
	b := &Broker{cfg: &config.Broker{LogDirs: dirs}, fs: fsys, logger: slog.New(slog.DiscardHandler), meta: link}
	for _, d := range dirs {
		if err := fsys.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := segment.WriteFileAtomic(fsys, filepath.Join(d, cleanShutdownFile), cleanShutdownMarker(b.cleanShutdownEpoch())); err != nil {
			t.Fatal(err)
		}
	}
	b.notePreviousBrokerEpoch(link)
	if link.previous != 1234 {
		t.Errorf("the link was given previous epoch %d, want 1234", link.previous)
	}
	// A node that holds the controller's store has no link epoch.
	b.meta = nil
	if got := b.cleanShutdownEpoch(); got != -1 {
		t.Errorf("epoch %d without a link, want -1", got)
	}
}
