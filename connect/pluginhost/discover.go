package pluginhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/sluice-io/sluice/connect/proto/connectv1"
)

// Plugin is a plugin binary and what it said it implements.
type Plugin struct {
	Path string
	// SHA256 is the hex digest of the binary when it was discovered; every
	// later exec is refused if the file changed.
	SHA256     string
	Connectors []*connectv1.ConnectorDescriptor
}

// Describes reports whether p implements class (a class name or alias)
// and returns its descriptor.
func (p Plugin) Describes(class string) (*connectv1.ConnectorDescriptor, bool) {
	for _, c := range p.Connectors {
		if c.GetClassName() == class {
			return c, true
		}
		for _, a := range c.GetAliases() {
			if a == class {
				return c, true
			}
		}
	}
	return nil, false
}

// Find returns the plugin implementing class among ps.
func Find(ps []Plugin, class string) (Plugin, *connectv1.ConnectorDescriptor, bool) {
	for _, p := range ps {
		if d, ok := p.Describes(class); ok {
			return p, d, true
		}
	}
	return Plugin{}, nil, false
}

// Discover runs every executable regular file in dirs once to ask what it
// implements, a few at a time. Files that fail are reported in errs and
// skipped; a missing directory is an error too. Plugins are returned
// sorted by path.
func (h *Host) Discover(ctx context.Context, dirs []string) (plugins []Plugin, errs []error) {
	var paths []string
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			errs = append(errs, fmt.Errorf("pluginhost: plugin.path %s: %w", dir, err))
			continue
		}
		for _, e := range entries {
			path := filepath.Join(dir, e.Name())
			fi, err := os.Stat(path) // follows symlinks
			if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
				continue
			}
			paths = append(paths, path)
		}
	}
	type result struct {
		pl  Plugin
		err error
	}
	results := make([]result, len(paths))
	sem := make(chan struct{}, discoverParallelism)
	var wg sync.WaitGroup
	for i, path := range paths {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			pl, err := h.describe(ctx, path)
			results[i] = result{pl, err}
		}()
	}
	wg.Wait()
	for _, r := range results {
		if r.err != nil {
			errs = append(errs, r.err)
		} else {
			plugins = append(plugins, r.pl)
		}
	}
	sort.Slice(plugins, func(i, j int) bool { return plugins[i].Path < plugins[j].Path })
	return plugins, errs
}

// discoverParallelism bounds how many binaries Discover runs at once.
const discoverParallelism = 4

// describe hashes path, runs it and calls Describe.
func (h *Host) describe(ctx context.Context, path string) (Plugin, error) {
	sum, err := FileSHA256(path)
	if err != nil {
		return Plugin{}, err
	}
	pl := Plugin{Path: path, SHA256: sum}
	p, err := h.Launch(ctx, pl, "", Limits{})
	if err != nil {
		return Plugin{}, err
	}
	defer func() { _ = p.Close() }()
	pl.Connectors, err = p.Describe(ctx)
	if err != nil {
		return Plugin{}, fmt.Errorf("pluginhost: describe %s: %w", path, err)
	}
	if len(pl.Connectors) == 0 {
		return Plugin{}, fmt.Errorf("pluginhost: %s implements no connector", path)
	}
	return pl, nil
}

// FileSHA256 is the hex sha256 of a file.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("pluginhost: %w", err)
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("pluginhost: hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ErrChecksum is returned (wrapped) when a plugin binary changed since it
// was discovered.
var ErrChecksum = errors.New("plugin binary changed since discovery (sha256 mismatch)")
