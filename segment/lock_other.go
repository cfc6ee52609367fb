//go:build !unix

package segment

import (
	"io"
	"os"
)

// Lock has no flock(2) to call here; it only opens the file, so a second
// broker on the same directory is not detected on this platform.
func (osFS) Lock(path string) (io.Closer, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
}
