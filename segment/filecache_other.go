//go:build !unix

package segment

// nofileLimit cannot be read here; the cache falls back to a fixed cap.
func nofileLimit() (int64, bool) { return 0, false }
