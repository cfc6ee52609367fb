//go:build linux || darwin

package broker

import "golang.org/x/sys/unix"

// volumeSpace is the total and usable bytes of the volume holding dir
// (DescribeLogDirs v4+), -1 each when the file system will not say.
func volumeSpace(dir string) (total, usable int64) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return -1, -1
	}
	bs := int64(st.Bsize) //nolint:unconvert // int64 on linux, uint32 on darwin
	return int64(st.Blocks) * bs, int64(st.Bavail) * bs
}
