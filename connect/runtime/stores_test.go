package runtime

import (
	"context"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/sluice-io/sluice/connect/storage"
)

// recordingStatus is a memory status store that also lists every put in
// order, as the status topic would hold them.
type recordingStatus struct {
	*storage.MemoryStatusStore
	puts chan string
}

func (r recordingStatus) PutConnector(ctx context.Context, name string, st storage.Status) error {
	r.puts <- "connector " + name + " " + string(st.State)
	return r.MemoryStatusStore.PutConnector(ctx, name, st)
}

func (r recordingStatus) PutTask(ctx context.Context, id storage.TaskID, st storage.Status) error {
	r.puts <- "task " + id.Connector + "-" + string(rune('0'+id.Task)) + " " + string(st.State)
	return r.MemoryStatusStore.PutTask(ctx, id, st)
}

// Deleting a connector tombstones each of its tasks under the task's own
// key before the connector: another worker reading the status topic may
// see the connector's tombstone before a task's last record (they are on
// different partitions), and only the task's own tombstone removes it.
func TestForgetTombstonesTasksBeforeConnector(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mem := storage.NewMemoryStatusStore(nil)
	running := storage.Status{State: storage.StateRunning, WorkerID: "w1:8083", Generation: 1}
	for _, put := range []error{
		mem.PutConnector(ctx, "c", running),
		mem.PutTask(ctx, storage.TaskID{Connector: "c", Task: 0}, running),
		mem.PutTask(ctx, storage.TaskID{Connector: "c", Task: 1}, running),
	} {
		if put != nil {
			t.Fatal(put)
		}
	}
	rec := recordingStatus{mem, make(chan string, 16)}
	s := newAsyncStatus(ctx, rec, func() int32 { return 1 }, slog.New(slog.DiscardHandler))
	s.Forget("c")

	var got []string
	for len(got) < 3 {
		select {
		case p := <-rec.puts:
			got = append(got, p)
		case <-time.After(10 * time.Second):
			t.Fatalf("puts after 10s: %v", got)
		}
	}
	tasks := []string{got[0], got[1]}
	if !reflect.DeepEqual(tasks, []string{"task c-0 DESTROYED", "task c-1 DESTROYED"}) &&
		!reflect.DeepEqual(tasks, []string{"task c-1 DESTROYED", "task c-0 DESTROYED"}) {
		t.Fatalf("puts %v, want both tasks' tombstones first", got)
	}
	if got[2] != "connector c DESTROYED" {
		t.Fatalf("puts %v, want the connector's tombstone last", got)
	}
	if _, ok := mem.Connector("c"); ok || len(mem.Tasks("c")) != 0 {
		t.Fatalf("statuses left after Forget: %v", mem.Tasks("c"))
	}
}
