package broker

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/sluice-io/sluice/segment"
)

// lockFile is the file a broker flocks in each of its log directories, as
// Kafka's .lock: two brokers appending to the same segments lose
// acknowledged records, and a broker that only loads a live one's logs
// rewrites its indexes, snapshots and checkpoints under it.
const lockFile = ".lock"

// dirLocks are the locks a broker holds on its log directories, from before
// it reads anything there until its shutdown is complete.
type dirLocks []io.Closer

// checkLogDirs refuses a log directory listed twice (also under another
// spelling of its path): the broker would lock itself out.
func checkLogDirs(dirs []string) error {
	if len(dirs) == 0 {
		return errors.New("broker: log.dirs is empty")
	}
	seen := map[string]string{}
	for _, d := range dirs {
		abs, err := filepath.Abs(d)
		if err != nil {
			return fmt.Errorf("broker: log dir %s: %w", d, err)
		}
		if first, ok := seen[abs]; ok {
			return fmt.Errorf("broker: Duplicate log directory found: %s and %s in log.dirs are the same directory", first, d)
		}
		seen[abs] = d
	}
	return nil
}

// lockLogDirs creates (if needed) and locks every log directory, or none:
// on any failure the locks already taken are released.
func lockLogDirs(fsys segment.FS, dirs []string) (dirLocks, error) {
	var held dirLocks
	for _, dir := range dirs {
		if err := fsys.MkdirAll(dir, 0o755); err != nil {
			held.release()
			return nil, fmt.Errorf("broker: log dir %s: %w", dir, err)
		}
		l, err := fsys.Lock(filepath.Join(dir, lockFile))
		if err != nil {
			held.release()
			return nil, lockError(dir, err)
		}
		held = append(held, l)
	}
	return held, nil
}

// lockError words a refused lock as Kafka does, naming the holder when the
// lock file or /proc/locks tells it.
func lockError(dir string, err error) error {
	var le *segment.LockedError
	if !errors.As(err, &le) {
		return fmt.Errorf("broker: Disk error while locking directory %s: %w", dir, err)
	}
	who := "A Sluice broker in another process or thread"
	if le.PID > 0 {
		who = fmt.Sprintf("Process %d (a Sluice broker, or another program)", le.PID)
	}
	return fmt.Errorf("broker: Failed to acquire lock on file %s in %s. %s is using this directory; stop it, or give this broker other log.dirs: %w",
		lockFile, dir, who, segment.ErrLocked)
}

func (l dirLocks) release() {
	for _, c := range l {
		_ = c.Close()
	}
}
