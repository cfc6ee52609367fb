package main

// The PostgreSQL CDC source's benchmark (issue 20: 20k row changes/s or
// more end to end). A PostgreSQL of the benchmark's own (Debian's
// postgresql, wal_level=logical, on a loopback port in the scratch dir)
// takes a stream of committed changes, inserts and then updates of the
// same rows in transactions of 1000; the connector streams them into a
// topic as Debezium JSON events. The run counts from the first commit
// until the topic holds every change, and reads the CPU of the plugin,
// the worker, the broker and PostgreSQL (every server process: the
// walsender decoding the WAL is one) over that stretch.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
)

func init() { registerConnectorBench(connectorBench{Name: "postgrescdc", Run: runPostgresCDCBench}) }

const (
	pgcdcTarget  = ">= 20k row changes/s"
	pgcdcTargetN = 20_000
	pgcdcTxnRows = 1000
)

func runPostgresCDCBench(ctx context.Context, env *connectorEnv) ([]connectorRow, error) {
	rows := 200_000
	if env.Quick {
		rows = 40_000
	}
	changes := 2 * rows // each row inserted, then updated
	row := connectorRow{Workload: fmt.Sprintf("%d inserts then %d updates of 3-column rows, %d per transaction, JSON events",
		rows, rows, pgcdcTxnRows), Tool: "sluice connect", Unit: "row changes", Target: pgcdcTarget}
	pg, err := startBenchPostgres(ctx, env.Dir)
	if err != nil {
		return []connectorRow{{Workload: row.Workload, Tool: row.Tool, Err: err.Error()}}, nil
	}
	defer pg.stop()
	if err := pg.psql("postgres", "CREATE DATABASE bench"); err != nil {
		return nil, err
	}
	if err := pg.psql("bench", "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, n int NOT NULL)"); err != nil {
		return nil, err
	}
	adm, cl, err := newAdmin(env.Bootstrap)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	const topic = "bench.public.items"
	if resp, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil || resp.Err != nil {
		return nil, fmt.Errorf("creating %s: %v %v", topic, err, resp.Err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = adm.DeleteTopics(dctx, topic)
	}()
	const name = "bench-postgrescdc"
	if err := env.REST.create(ctx, name, map[string]string{
		"connector.class": "io.debezium.connector.postgresql.PostgresConnector", "tasks.max": "1",
		"database.hostname": "127.0.0.1", "database.port": strconv.Itoa(pg.port), "database.user": "postgres",
		"database.dbname": "bench", "database.sslmode": "disable", "topic.prefix": "bench",
		"table.include.list": "public.items", "publication.autocreate.mode": "filtered", "slot.name": "bench",
		"snapshot.mode": "no_data", "slot.drop.on.stop": "true",
		"key.converter": "org.apache.kafka.connect.json.JsonConverter", "key.converter.schemas.enable": "false",
		"value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": "false",
	}); err != nil {
		return nil, err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = env.REST.delete(dctx, name)
		for dctx.Err() == nil && pluginPid(env.WorkerPID, "postgrescdc") != 0 {
			time.Sleep(100 * time.Millisecond)
		}
	}()
	if err := env.REST.waitRunning(ctx, name, 60*time.Second); err != nil {
		return nil, err
	}
	plugin := pluginPid(env.WorkerPID, "postgrescdc")
	if plugin == 0 {
		return nil, fmt.Errorf("no postgrescdc plugin process under worker %d", env.WorkerPID)
	}
	// The slot exists once the task runs; give it a moment to stream.
	time.Sleep(500 * time.Millisecond)
	pids := map[string]int{"plugin": plugin, "worker": env.WorkerPID, "broker": env.BrokerPID}
	before, err := cpus(pids)
	if err != nil {
		return nil, err
	}
	// The loader's connection stays open until the CPU is read: a backend
	// that exits takes its CPU time out of the sum.
	conn, err := pgx.Connect(ctx, pg.dsn("bench"))
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	pgBefore := pg.cpu()
	start := time.Now()
	loaded := make(chan error, 1)
	go func() { loaded <- pgcdcLoad(ctx, conn, rows) }()
	if err := waitTopicCount(ctx, adm, topic, int64(changes), loaded, start); err != nil {
		return nil, err
	}
	row.Seconds = time.Since(start).Seconds()
	row.Count = int64(changes)
	after, err := cpus(pids)
	if err != nil {
		return nil, err
	}
	row.CPU = map[string]float64{"postgres": (pg.cpu() - pgBefore) * 1e6 / float64(changes)}
	for k := range pids {
		row.CPU[k] = (after[k] - before[k]) * 1e6 / float64(changes)
	}
	row.Met = "missed"
	if rate(row) >= pgcdcTargetN {
		row.Met = "met"
	}
	return []connectorRow{row}, nil
}

func pluginPid(worker int, name string) int {
	for _, c := range children(worker) {
		if c.name == name {
			return c.pid
		}
	}
	return 0
}

// waitTopicCount waits until topic holds n records, failing when the
// loader fails or nothing moves for 30 s.
func waitTopicCount(ctx context.Context, adm *kadm.Client, topic string, n int64, loaded chan error, start time.Time) error {
	last, lastMove := int64(-1), time.Now()
	for {
		ends, err := adm.ListEndOffsets(ctx, topic)
		var total int64
		if err == nil {
			ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
		}
		if total >= n {
			return nil
		}
		if total != last {
			last, lastMove = total, time.Now()
		}
		if time.Since(lastMove) > 30*time.Second {
			return fmt.Errorf("stalled at %d of %d records after %.0fs", total, n, time.Since(start).Seconds())
		}
		select {
		case err := <-loaded:
			if err != nil {
				return fmt.Errorf("loading PostgreSQL: %w", err)
			}
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// benchPostgres is a PostgreSQL server the benchmark started.
type benchPostgres struct {
	bin, dir string
	port     int
	cred     *syscall.Credential
	cmd      *exec.Cmd
	done     chan struct{}
}

func startBenchPostgres(ctx context.Context, scratch string) (*benchPostgres, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Strings(dirs)
	if len(dirs) == 0 {
		return nil, errors.New("PostgreSQL is not installed (Debian's postgresql package)")
	}
	p := &benchPostgres{bin: dirs[len(dirs)-1], dir: filepath.Join(scratch, "pgdata"), done: make(chan struct{})}
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 { // PostgreSQL refuses to run as root
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs the postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(p.dir, uid, gid); err != nil {
			return nil, err
		}
		for d := scratch; d != "/" && d != "."; d = filepath.Dir(d) {
			if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
				_ = os.Chmod(d, fi.Mode().Perm()|0o011)
			}
		}
	}
	if out, err := p.command("initdb", "-D", p.dir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p.port = l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	conf := fmt.Sprintf("\nlisten_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\nwal_level = logical\n"+
		"max_replication_slots = 8\nmax_wal_senders = 8\nshared_buffers = 128MB\nsynchronous_commit = off\nmax_wal_size = 2GB\n", p.port, p.dir)
	f, err := os.OpenFile(filepath.Join(p.dir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	_, err = f.WriteString(conf)
	_ = f.Close()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(scratch, "postgres.log"))
	if err != nil {
		return nil, err
	}
	p.cmd = p.command("postgres", "-D", p.dir)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = p.cmd.Wait(); _ = logf.Close(); close(p.done) }()
	for deadline := time.Now().Add(60 * time.Second); ; {
		if err := p.command("pg_isready", "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(p.port)).Run(); err == nil {
			return p, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			p.stop()
			return nil, fmt.Errorf("postgres not ready on port %d", p.port)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *benchPostgres) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(p.bin, name), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	return cmd
}

func (p *benchPostgres) dsn(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.port, db)
}

func (p *benchPostgres) psql(db, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.dsn(db))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// pgcdcLoad commits rows inserts, then rows updates, in transactions of
// pgcdcTxnRows row changes.
func pgcdcLoad(ctx context.Context, conn *pgx.Conn, rows int) error {
	for i := 0; i < rows; i += pgcdcTxnRows {
		q := fmt.Sprintf("INSERT INTO items SELECT g, 'item-' || g, 0 FROM generate_series(%d, %d) g", i+1, min(i+pgcdcTxnRows, rows))
		if _, err := conn.Exec(ctx, q); err != nil {
			return err
		}
	}
	for i := 0; i < rows; i += pgcdcTxnRows {
		q := fmt.Sprintf("UPDATE items SET n = n + 1 WHERE id BETWEEN %d AND %d", i+1, min(i+pgcdcTxnRows, rows))
		if _, err := conn.Exec(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// cpu is the CPU seconds of the postmaster and every server process.
func (p *benchPostgres) cpu() float64 {
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	total, _ := cpuOf(p.cmd.Process.Pid)
	for _, c := range children(p.cmd.Process.Pid) {
		v, _ := cpuOf(c.pid)
		total += v
	}
	return total
}

func (p *benchPostgres) stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}
