package broker

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/sluice-io/sluice/netio"
)

// bind takes the Kafka listener's port and sets up the network engine
// without serving yet: connections wait in the kernel's backlog until
// Listen. Done before any log is read, so a broker whose port is taken
// fails without having written anything.
func (b *Broker) bind() error {
	if !b.cfg.IsBroker() {
		return b.bindControllerOnly()
	}
	l := b.cfg.Listeners[0]
	addr := net.JoinHostPort(l.Host, strconv.Itoa(l.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		// Names the setting itself and does not wrap the *net.OpError:
		// callers that explain a failed listen as the admin endpoint's
		// (the other address New binds) must not blame the wrong one.
		return fmt.Errorf("broker: cannot listen on listeners=%s://%s: %v; nothing in the log dirs was read or written",
			l.Name, addr, err)
	}
	engine, name, err := b.engineFor()
	if err != nil {
		ln.Close()
		return err
	}
	b.listener, b.engine, b.engineName = ln, engine, name
	if err := b.bindController(); err != nil {
		_ = engine.Close()
		ln.Close()
		return err
	}
	return nil
}

// bindControllerOnly is bind on a node that is only a controller: no
// Kafka listener, the engine serves the CONTROLLER listener alone.
func (b *Broker) bindControllerOnly() error {
	engine, name, err := b.engineFor()
	if err != nil {
		return err
	}
	b.engine, b.engineName = engine, name
	if err := b.bindController(); err != nil {
		_ = engine.Close()
		return err
	}
	return nil
}

func (b *Broker) engineFor() (netio.Engine, string, error) {
	return b.newEngine(netio.Config{
		MaxRequestBytes:    b.cfg.SocketRequestMaxBytes,
		MaxInFlightPerConn: maxInFlightPerConn,
		IdleTimeout:        time.Duration(b.cfg.ConnectionsMaxIdleMs) * time.Millisecond,
		MaxConnections:     int(b.cfg.MaxConnections),
		Observer:           b.metrics,
	})
}

// bindController takes the CONTROLLER listener of a controller in a
// cluster.
func (b *Broker) bindController() error {
	cl, ok := b.cfg.ControllerListener()
	if !ok || !b.cfg.ClusterMode() {
		return nil
	}
	caddr := net.JoinHostPort(cl.Host, strconv.Itoa(cl.Port))
	ln, err := net.Listen("tcp", caddr)
	if err != nil {
		return fmt.Errorf("broker: cannot listen on the controller listener %s://%s: %v; nothing in the log dirs was read or written", cl.Name, caddr, err)
	}
	b.ctrlListener = ln
	return nil
}

// Listen starts serving the listener New bound, and the background tasks
// (flush, retention, producer and offset expiry); Addr reports the bound
// address (useful with port 0). A broker without network (Deps.Network
// nil) only starts the tasks.
func (b *Broker) Listen() error {
	if b.listening.Load() {
		return errors.New("broker: already listening")
	}
	for _, ln := range []net.Listener{b.listener, b.ctrlListener} {
		if b.engine == nil || ln == nil || ln == b.ctrlListener && b.ctrlServing {
			continue
		}
		b.serve(ln)
	}
	b.startBackgroundTasks()
	b.listening.Store(true)
	b.metrics.ready.Set(1)
	if b.engine == nil {
		b.logger.Info("broker serving without network: requests reach it through Handle only", "node_id", b.localID(), "cluster_id", b.meta.ClusterID())
		return nil
	}
	if b.listener == nil {
		b.logger.Info("controller listening", "listener", b.cfg.ControllerListenerName(), "addr", b.ctrlListener.Addr().String(), "engine", b.engineName, "node_id", b.localID(), "cluster_id", b.meta.ClusterID())
		return nil
	}
	b.logger.Info("broker listening", "listener", b.cfg.Listeners[0].Name, "addr", b.listener.Addr().String(), "engine", b.engineName, "node_id", b.localID(), "cluster_id", b.meta.ClusterID())
	return nil
}

// serve runs the engine on ln until Shutdown.
func (b *Broker) serve(ln net.Listener) {
	b.tasks.Add(1)
	go func() {
		defer b.tasks.Done()
		if err := b.engine.Serve(ln); err != nil && !errors.Is(err, netio.ErrEngineClosed) {
			b.logger.Error("listener stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
}

// newEngine builds the network engine netio.engine asks for; netio decides
// what auto means and logs why when it falls back.
func (b *Broker) newEngine(cfg netio.Config) (netio.Engine, string, error) {
	cfg.Engine = b.cfg.NetioEngine
	cfg.UringMode = b.cfg.NetioUringMode
	e, name, err := b.network(cfg, b, b.logger)
	if err != nil {
		return nil, "", fmt.Errorf("broker: %w", err)
	}
	return e, name, nil
}

// EngineName is the network engine serving the listener (std or uring).
func (b *Broker) EngineName() string { return b.engineName }

// maxInFlightPerConn bounds concurrently handled requests of one connection;
// clients pipeline at most a handful (Kafka's default is 5), so 32 leaves room
// for long-polling fetches beside produce.
const maxInFlightPerConn = 32

// Addr is the address the listener is bound to.
func (b *Broker) Addr() net.Addr {
	if b.listener == nil {
		return nil
	}
	return b.listener.Addr()
}

// AdminAddr is the address of the admin endpoint, nil when it is off.
func (b *Broker) AdminAddr() net.Addr {
	if b.admin == nil {
		return nil
	}
	return b.admin.Addr()
}
