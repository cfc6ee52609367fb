// Package pgtest starts a real PostgreSQL server for a test: Debian's
// postgresql package, a fresh cluster in the test's temp dir, listening on
// a loopback port, with wal_level=logical so logical replication works. No
// mock stands in for PostgreSQL in Sluice's connector tests.
//
// PostgreSQL refuses to run as root, so when the test runs as root the
// server runs as the "postgres" user the package creates. Without the
// binaries a test is skipped, except under CI=true, where .ci/run installs
// them and their absence fails the test.
package pgtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/testkit"
)

// Server is a PostgreSQL server a test started. Stop it with Stop (Start
// registers a cleanup that does).
type Server struct {
	// Port is the loopback TCP port it listens on.
	Port int
	// Dir is its data directory.
	Dir string

	bin     string
	logPath string
	cred    *syscall.Credential
	owner   [2]int // uid, gid the files must belong to, or -1
	cmd     *exec.Cmd
	done    chan struct{}
	t       testing.TB
}

// Options adjust a server; the zero value is a durable server.
type Options struct {
	// Settings are extra postgresql.conf lines ("name = value").
	Settings []string
	// NoFsync turns fsync off: faster, for tests that never crash the
	// server itself.
	NoFsync bool
}

// Start initialises a cluster in a temp dir and starts it. The superuser
// is "postgres" with trust authentication on loopback.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin, err := findBin()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("pgtest: %v (.ci/run installs postgresql)", err)
		}
		t.Skipf("pgtest: %v", err)
	}
	s := &Server{bin: bin, owner: [2]int{-1, -1}, t: t}
	base := t.TempDir()
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("pgtest: running as root needs the postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		s.owner = [2]int{uid, gid}
		// The temp dir's parents must be traversable by postgres.
		for d := base; d != "/" && d != "."; d = filepath.Dir(d) {
			if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
				_ = os.Chmod(d, fi.Mode().Perm()|0o011)
			}
		}
	}
	s.Dir = filepath.Join(base, "pgdata")
	s.logPath = filepath.Join(base, "postgres.log")
	if err := os.Mkdir(s.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	s.chown(s.Dir)
	out, err := s.command("initdb", "-D", s.Dir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8").CombinedOutput()
	if err != nil {
		t.Fatalf("pgtest: initdb: %v\n%s", err, out)
	}
	s.Port = testkit.FreePorts(t, 1)[0]
	conf := []string{
		"listen_addresses = '127.0.0.1'",
		fmt.Sprintf("port = %d", s.Port),
		fmt.Sprintf("unix_socket_directories = '%s'", s.Dir),
		"wal_level = logical",
		"max_replication_slots = 16",
		"max_wal_senders = 16",
		"max_connections = 100",
		"shared_buffers = 32MB",
		"logging_collector = off",
	}
	if opts.NoFsync {
		conf = append(conf, "fsync = off", "synchronous_commit = off", "full_page_writes = off")
	}
	conf = append(conf, opts.Settings...)
	f, err := os.OpenFile(filepath.Join(s.Dir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString("\n# pgtest\n" + strings.Join(conf, "\n") + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	// Logical replication connections need a replication line in
	// pg_hba.conf; initdb's default has one for local and loopback.
	s.start()
	t.Cleanup(s.Stop)
	return s
}

// DSN is a libpq connection URL for database db (postgres if empty).
func (s *Server) DSN(db string) string {
	if db == "" {
		db = "postgres"
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, db)
}

// Psql runs sql through psql against database db and returns its output
// (unaligned, tuples only); the test fails on an error.
func (s *Server) Psql(db, sql string) string {
	s.t.Helper()
	if db == "" {
		db = "postgres"
	}
	cmd := exec.Command(filepath.Join(s.bin, "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
		"-h", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-U", "postgres", "-d", db, "-c", sql)
	out, err := cmd.CombinedOutput()
	if err != nil {
		s.t.Fatalf("pgtest: psql %q: %v\n%s", sql, err, out)
	}
	return strings.TrimSpace(string(out))
}

// CreateDB creates database name and returns its DSN.
func (s *Server) CreateDB(name string) string {
	s.t.Helper()
	s.Psql("", fmt.Sprintf("CREATE DATABASE %q", name))
	return s.DSN(name)
}

// Kill stops the server with SIGKILL, as a crash would.
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

// Stop stops the server with a fast shutdown; safe to call twice.
func (s *Server) Stop() { s.signal(syscall.SIGINT) }

// Restart starts a stopped or killed server again on the same port and
// data directory (crash recovery runs after Kill).
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// Log is what the server logged so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.logPath)
	return string(b)
}

func (s *Server) start() {
	s.t.Helper()
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	s.cmd = s.command("postgres", "-D", s.Dir)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL // never outlive the test binary
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		s.t.Fatalf("pgtest: starting postgres: %v", err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}(s.cmd, s.done)
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := exec.CommandContext(ctx, filepath.Join(s.bin, "pg_isready"), "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(s.Port)).Run()
		cancel()
		if err == nil {
			return
		}
		select {
		case <-s.done:
			s.t.Fatalf("pgtest: postgres exited at start; its log:\n%s", s.Log())
		default:
		}
		if time.Now().After(deadline) {
			s.Kill()
			s.t.Fatalf("pgtest: postgres not ready after 60s; its log:\n%s", s.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Server) signal(sig syscall.Signal) {
	if s.cmd == nil || s.done == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	// A killed postmaster leaves its backends behind for a moment; they
	// exit once they notice, and a restart waits for the shared memory.
}

func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	return cmd
}

func (s *Server) chown(path string) {
	if s.owner[0] >= 0 {
		if err := os.Chown(path, s.owner[0], s.owner[1]); err != nil {
			s.t.Fatalf("pgtest: %v", err)
		}
	}
}

// findBin finds the directory of initdb and postgres: $SLUICE_PG_BIN, the
// newest /usr/lib/postgresql/N/bin (Debian keeps them off PATH), or PATH.
func findBin() (string, error) {
	if d := os.Getenv("SLUICE_PG_BIN"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("no PostgreSQL server binaries (initdb) in /usr/lib/postgresql/*/bin or PATH")
}

func pgVersion(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}
