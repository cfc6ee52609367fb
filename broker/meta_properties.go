package broker

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/sluice-io/sluice/segment"
)

// metaPropertiesFile gives each log directory its own identity, with
// Kafka's file name and keys: which cluster and node it belongs to, and a
// directory id of its own. With it the order of log.dirs does not matter,
// and a directory of another cluster or node listed by mistake is refused
// instead of having its partitions taken for strays.
const metaPropertiesFile = "meta.properties"

// metaPropertiesVersion is the KRaft version of the file (v0 had broker.id).
const metaPropertiesVersion = 1

type metaProperties struct {
	clusterID   string
	nodeID      int32
	directoryID string // "" when the file had none; one is then written back
}

// readMetaProperties returns the identity of dir, nil when it has no
// meta.properties (a new directory, or one written by an older Sluice).
func readMetaProperties(fsys segment.FS, dir string) (*metaProperties, error) {
	path := filepath.Join(dir, metaPropertiesFile)
	b, err := segment.ReadFile(fsys, path)
	if errNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("broker: read %s: %w", path, err)
	}
	return parseMetaProperties(path, b)
}

func parseMetaProperties(path string, b []byte) (*metaProperties, error) {
	kv := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("broker: %s is malformed: line %q is not key=value", path, line)
		}
		kv[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	if v := kv["version"]; v != strconv.Itoa(metaPropertiesVersion) {
		return nil, fmt.Errorf("broker: %s has version %q; this broker reads version %d", path, v, metaPropertiesVersion)
	}
	mp := &metaProperties{clusterID: kv["cluster.id"], directoryID: kv["directory.id"]}
	if mp.clusterID == "" {
		return nil, fmt.Errorf("broker: %s names no cluster.id", path)
	}
	node, err := strconv.ParseInt(kv["node.id"], 10, 32)
	if err != nil {
		return nil, fmt.Errorf("broker: node ID not found in %s: %q", path, kv["node.id"])
	}
	mp.nodeID = int32(node)
	return mp, nil
}

func (mp *metaProperties) encode() []byte {
	kv := map[string]string{
		"version":      strconv.Itoa(metaPropertiesVersion),
		"cluster.id":   mp.clusterID,
		"node.id":      strconv.Itoa(int(mp.nodeID)),
		"directory.id": mp.directoryID,
	}
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteString("# Identity of this Sluice log directory; do not edit or copy it to another directory.\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, kv[k])
	}
	return b.Bytes()
}

func writeMetaProperties(fsys segment.FS, dir string, mp *metaProperties) error {
	if err := writeFileAtomic(fsys, dir, metaPropertiesFile, mp.encode()); err != nil {
		return fmt.Errorf("broker: write %s: %w", filepath.Join(dir, metaPropertiesFile), err)
	}
	return nil
}

// newDirectoryID is a random UUID in Kafka's text form (base64 URL, no
// padding), as directory.id (KIP-858).
func newDirectoryID() string {
	var id [16]byte
	_, _ = rand.Read(id[:])
	return base64.RawURLEncoding.EncodeToString(id[:])
}

// writeFileAtomic replaces dir/name so that a crash leaves the old content
// or the new, never a mix (segment.WriteFileAtomic).
func writeFileAtomic(fsys segment.FS, dir, name string, data []byte) error {
	return segment.WriteFileAtomic(fsys, filepath.Join(dir, name), data)
}
