package cli

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const clusterAddVoterUsage = `usage: sluice cluster add-voter --voter-id ID --directory-id ID --endpoint HOST:PORT [flags]

Adds a controller to the controller quorum (Kafka's AddRaftVoter, what
kafka-metadata-quorum add-controller sends); any broker forwards it to the
active controller, which answers once the change is done. The controller
must run already: --directory-id is the incarnation its directory was
formatted with (a voter's directory_id in "cluster describe --json"; 32 hex
digits, a UUID, or Kafka's 22-character base64), --endpoint is its
controller listener. A voter id the quorum has under another directory id
(a controller whose disk was wiped) is replaced by the new one.

flags:
  --voter-id ID            the controller's node id
  --directory-id ID        its directory id
  --endpoint HOST:PORT     its controller listener
  --listener NAME          that listener's name (default CONTROLLER)
` + commonFlagsUsage

const clusterRemoveVoterUsage = `usage: sluice cluster remove-voter --voter-id ID --directory-id ID [flags]

Removes a controller from the controller quorum (Kafka's RemoveRaftVoter,
what kafka-metadata-quorum remove-controller sends): it leaves the
metadata ISR, then the quorum. The controllers that stay must be
running; the one removed may be down for good, as long as those left can
carry the change without it (removing one of three works, two of three
or one of two is refused with REQUEST_TIMED_OUT). The active controller
does not remove itself: stop it, start it again once another voter is
active, then remove it.

flags:
  --voter-id ID            the controller's node id
  --directory-id ID        its directory id (see add-voter)
` + commonFlagsUsage

func runClusterAddVoter(args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("cluster add-voter")
	id := fs.String("voter-id", "", "")
	dir := fs.String("directory-id", "", "")
	endpoint := fs.String("endpoint", "", "")
	listener := fs.String("listener", "CONTROLLER", "")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return handleParseError(err, clusterAddVoterUsage, stdout, stderr)
	}
	if len(rest) > 0 {
		return reportUsage(stderr, clusterAddVoterUsage, usagef("unexpected argument %q", rest[0]))
	}
	req := kmsg.NewPtrAddRaftVoterRequest()
	if req.VoterID, req.VoterDirectoryID, err = voterFlags(*id, *dir); err != nil {
		return reportUsage(stderr, clusterAddVoterUsage, err)
	}
	host, port, err := splitEndpoint(*endpoint)
	if err != nil {
		return reportUsage(stderr, clusterAddVoterUsage, err)
	}
	l := kmsg.NewAddRaftVoterRequestListener()
	l.Name, l.Host, l.Port = *listener, host, port
	req.Listeners = append(req.Listeners, l)
	return runWithClient(cf, clusterAddVoterUsage, stderr, func(ctx context.Context, c *client) error {
		err := sendVoterChange(ctx, func(ctx context.Context) (int16, *string, error) {
			if d, ok := ctx.Deadline(); ok {
				req.TimeoutMillis = int32(min(time.Until(d).Milliseconds(), math.MaxInt32))
			}
			resp, err := req.RequestWith(ctx, c.kgo)
			if err != nil {
				return 0, nil, err
			}
			return resp.ErrorCode, resp.ErrorMessage, nil
		})
		if err != nil {
			return fmt.Errorf("add voter %d: %w", req.VoterID, err)
		}
		return printVoterChange(stdout, cf.json, "added", req.VoterID, req.VoterDirectoryID)
	})
}

func runClusterRemoveVoter(args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("cluster remove-voter")
	id := fs.String("voter-id", "", "")
	dir := fs.String("directory-id", "", "")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return handleParseError(err, clusterRemoveVoterUsage, stdout, stderr)
	}
	if len(rest) > 0 {
		return reportUsage(stderr, clusterRemoveVoterUsage, usagef("unexpected argument %q", rest[0]))
	}
	req := kmsg.NewPtrRemoveRaftVoterRequest()
	if req.VoterID, req.VoterDirectoryID, err = voterFlags(*id, *dir); err != nil {
		return reportUsage(stderr, clusterRemoveVoterUsage, err)
	}
	return runWithClient(cf, clusterRemoveVoterUsage, stderr, func(ctx context.Context, c *client) error {
		err := sendVoterChange(ctx, func(ctx context.Context) (int16, *string, error) {
			resp, err := req.RequestWith(ctx, c.kgo)
			if err != nil {
				return 0, nil, err
			}
			return resp.ErrorCode, resp.ErrorMessage, nil
		})
		if err != nil {
			return fmt.Errorf("remove voter %d: %w", req.VoterID, err)
		}
		return printVoterChange(stdout, cf.json, "removed", req.VoterID, req.VoterDirectoryID)
	})
}

// voterFlags checks --voter-id and --directory-id.
func voterFlags(idFlag, dir string) (int32, [16]byte, error) {
	id, err := strconv.ParseInt(idFlag, 10, 32)
	if err != nil || id < 0 {
		return 0, [16]byte{}, usagef("--voter-id is required: a node id, 0 or more (got %q)", idFlag)
	}
	if dir == "" {
		return 0, [16]byte{}, usagef("--directory-id is required")
	}
	d, err := parseDirectoryID(dir)
	if err != nil {
		return 0, d, usagef("--directory-id: %v", err)
	}
	return int32(id), d, nil
}

// parseDirectoryID reads a 16-byte directory id: 32 hex digits, a UUID
// with dashes, or Kafka's unpadded URL-safe base64 (22 characters).
func parseDirectoryID(s string) ([16]byte, error) {
	var out [16]byte
	var raw []byte
	var err error
	switch {
	case len(s) == 22:
		raw, err = base64.RawURLEncoding.DecodeString(s)
	default:
		raw, err = hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	}
	if err != nil || len(raw) != len(out) || raw == nil {
		return out, fmt.Errorf("%q is not a directory id (32 hex digits, a UUID, or 22 base64 characters)", s)
	}
	copy(out[:], raw)
	if out == ([16]byte{}) {
		return out, fmt.Errorf("%q: the zero directory id names no controller", s)
	}
	return out, nil
}

func splitEndpoint(s string) (string, uint16, error) {
	if s == "" {
		return "", 0, usagef("--endpoint is required (the controller listener's HOST:PORT)")
	}
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, usagef("--endpoint %q: %v", s, err)
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil || port == 0 || host == "" {
		return "", 0, usagef("--endpoint %q: want HOST:PORT", s)
	}
	return host, uint16(port), nil
}

// sendVoterChange sends a membership request until it gets an answer
// that is not retriable (the active controller moving, a change that
// timed out at the controller) or ctx ends.
func sendVoterChange(ctx context.Context, send func(context.Context) (int16, *string, error)) error {
	for {
		code, msg, err := send(ctx)
		if err != nil {
			return err
		}
		err = kerr.ErrorForCode(code)
		if err == nil {
			return nil
		}
		if msg != nil && *msg != "" {
			err = fmt.Errorf("%w: %s", err, oneLine(*msg))
		}
		if !errors.Is(err, kerr.NotController) && !errors.Is(err, kerr.RequestTimedOut) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func printVoterChange(w io.Writer, asJSON bool, what string, id int32, dir [16]byte) error {
	if asJSON {
		return writeJSON(w, struct {
			Result      string `json:"result"`
			VoterID     int32  `json:"voter_id"`
			DirectoryID string `json:"directory_id"`
		}{what, id, hex.EncodeToString(dir[:])})
	}
	_, err := fmt.Fprintf(w, "Voter %d (directory id %x) %s.\n", id, dir, what)
	return err
}
