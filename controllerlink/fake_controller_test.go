package controllerlink

import (
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/netio"
	"github.com/sluice-io/sluice/segment"
)

// fakeController is a small Kafka-protocol server on loopback that plays
// a controller voter for a Link under test: its decisions are the
// controller package's planners over a real controller.Store (in memory),
// and a test can put its own answer (or a dropped connection) in front of
// any request with intercept. Several fakes may share one store, as the
// voters of a quorum share one replicated log; each is either the active
// controller (at an epoch its metadata answers carry) or a standby that
// answers the controller APIs NOT_CONTROLLER.
type fakeController struct {
	t     *testing.T
	id    int32
	ln    net.Listener
	store *controller.Store
	pol   controller.Policy

	mu        sync.Mutex
	active    bool
	epoch     int32 // CurrentLeader.LeaderEpoch of its fetch answers when active; -1: none, as a single controller
	notLeader int16 // the code a standby answers metadata fetches with
	hint      kmsg.FetchResponseTopicPartitionCurrentLeader
	intercept map[kmsg.Key]func(kmsg.Request) (resp kmsg.Response, drop bool)
	requests  []kmsg.Request // every request decoded, in arrival order
	conns     map[net.Conn]bool
	logStart  int64 // a metadata fetch below this answers with a SnapshotID
	closed    bool
	wg        sync.WaitGroup
}

// newFakeController is node 1, the one controller, active with no epoch.
func newFakeController(t *testing.T) *fakeController {
	t.Helper()
	f := newFakeVoter(t, 1, newFakeStore(t))
	f.setActive(-1)
	return f
}

// newFakeQuorum is voters 1..n over one store, every one a standby.
func newFakeQuorum(t *testing.T, n int) []*fakeController {
	t.Helper()
	store := newFakeStore(t)
	fs := make([]*fakeController, n)
	for i := range fs {
		fs[i] = newFakeVoter(t, int32(i+1), store)
	}
	return fs
}

// newFakeStore is a controller's store in memory with node 1 registered.
func newFakeStore(t *testing.T) *controller.Store {
	t.Helper()
	store, err := controller.Create(segment.NewMemFS(), "/controller", 1, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	// Node 1 is a broker too (process.roles=broker,controller), so topics
	// have somewhere to go.
	if _, err := store.Commit(func(s *controller.State) ([]controller.Record, error) {
		return s.PlanBrokerStart(controller.Broker{ID: 1}), nil
	}); err != nil {
		t.Fatal(err)
	}
	return store
}

// newFakeVoter serves store as voter id, a standby until setActive.
func newFakeVoter(t *testing.T, id int32, store *controller.Store) *fakeController {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeController{t: t, id: id, ln: ln, store: store, epoch: -1, notLeader: kerr.NotController.Code,
		intercept: map[kmsg.Key]func(kmsg.Request) (kmsg.Response, bool){}, conns: map[net.Conn]bool{}}
	f.hint.LeaderID, f.hint.LeaderEpoch = -1, -1
	f.wg.Add(1)
	go f.accept()
	t.Cleanup(f.stop)
	return f
}

func (f *fakeController) addr() string { return f.ln.Addr().String() }

// voter is f as the link's configuration names it.
func (f *fakeController) voter() Voter { return Voter{ID: f.id, Addr: f.addr()} }

// setActive makes f the active controller at epoch (-1: its answers carry
// none).
func (f *fakeController) setActive(epoch int32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.active, f.epoch = true, epoch
}

// setStandby makes f a voter that is not the controller: it answers the
// controller APIs NOT_CONTROLLER, metadata fetches with code (as the
// partition's error) naming leader at epoch as the controller (-1: none).
func (f *fakeController) setStandby(code int16, leader, epoch int32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.active, f.notLeader = false, code
	f.hint.LeaderID, f.hint.LeaderEpoch = leader, epoch
}

// stop closes the listener and every connection: the controller is down.
func (f *fakeController) stop() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	_ = f.ln.Close()
	for c := range f.conns {
		_ = c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// on puts fn in front of requests with key: it answers, or asks for the
// connection to be dropped; a nil answer without drop falls through to
// the store.
func (f *fakeController) on(key kmsg.Key, fn func(kmsg.Request) (kmsg.Response, bool)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.intercept[key] = fn
}

// seen returns the requests with key received so far.
func (f *fakeController) seen(key kmsg.Key) []kmsg.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []kmsg.Request
	for _, r := range f.requests {
		if r.Key() == key.Int16() {
			out = append(out, r)
		}
	}
	return out
}

// setLogStart folds the metadata log below offset: fetches from before it
// are told to fetch a snapshot, as after a controller's compaction.
func (f *fakeController) setLogStart(offset int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logStart = offset
}

// commit commits plan on the controller's store, failing the test on error.
func (f *fakeController) commit(plan controller.Plan) *controller.Image {
	f.t.Helper()
	img, err := f.store.Commit(plan)
	if err != nil {
		f.t.Fatal(err)
	}
	return img
}

func (f *fakeController) accept() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			_ = c.Close()
			return
		}
		f.conns[c] = true
		f.mu.Unlock()
		f.wg.Add(1)
		go f.serve(c)
	}
}

// serve reads size-prefixed requests and answers each in turn.
func (f *fakeController) serve(c net.Conn) {
	defer f.wg.Done()
	defer func() {
		f.mu.Lock()
		delete(f.conns, c)
		f.mu.Unlock()
		_ = c.Close()
	}()
	for {
		var size [4]byte
		if _, err := io.ReadFull(c, size[:]); err != nil {
			return
		}
		payload := make([]byte, binary.BigEndian.Uint32(size[:]))
		if _, err := io.ReadFull(c, payload); err != nil {
			return
		}
		h, body, err := netio.ReadRequestHeader(payload)
		if err != nil {
			f.t.Errorf("fake controller: %v", err)
			return
		}
		req := kmsg.RequestForKey(h.Key)
		if req == nil {
			f.t.Errorf("fake controller: request key %d", h.Key)
			return
		}
		req.SetVersion(h.Version)
		if err := req.ReadFrom(body); err != nil {
			f.t.Errorf("fake controller: decode %s: %v", kmsg.NameForKey(h.Key), err)
			return
		}
		resp, drop := f.handle(req)
		if drop {
			return
		}
		resp.SetVersion(h.Version)
		if _, err := c.Write(frameResponse(h.Key, h.Version, h.CorrelationID, resp)); err != nil {
			return
		}
	}
}

// frameResponse is a response as it goes on the wire, size first.
func frameResponse(key, version int16, correlationID int32, resp kmsg.Response) []byte {
	out := make([]byte, 4, 64)
	out = binary.BigEndian.AppendUint32(out, uint32(correlationID))
	if netio.FlexibleResponse(key, version) {
		out = append(out, 0) // no tagged fields
	}
	out = resp.AppendTo(out)
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	return out
}

func (f *fakeController) handle(req kmsg.Request) (kmsg.Response, bool) {
	f.mu.Lock()
	f.requests = append(f.requests, req)
	fn := f.intercept[kmsg.Key(req.Key())]
	active := f.active
	f.mu.Unlock()
	if fn != nil {
		if resp, drop := fn(req); resp != nil || drop {
			return resp, drop
		}
	}
	if _, ok := req.(*kmsg.ApiVersionsRequest); !ok && !active {
		return f.notController(req), false
	}
	switch r := req.(type) {
	case *kmsg.ApiVersionsRequest:
		resp := r.ResponseKind().(*kmsg.ApiVersionsResponse)
		for _, k := range []kmsg.Key{kmsg.Fetch, kmsg.FetchSnapshot, kmsg.BrokerRegistration, kmsg.BrokerHeartbeat,
			kmsg.Envelope, kmsg.CreateTopics, kmsg.AllocateProducerIDs, kmsg.AlterPartition, kmsg.ApiVersions} {
			v := kmsg.NewApiVersionsResponseApiKey()
			v.ApiKey, v.MinVersion, v.MaxVersion = k.Int16(), 0, kmsg.RequestForKey(k.Int16()).MaxVersion()
			resp.ApiKeys = append(resp.ApiKeys, v)
		}
		return resp, false
	case *kmsg.FetchRequest:
		return f.metadataFetch(r), false
	case *kmsg.FetchSnapshotRequest:
		return f.fetchSnapshot(r), false
	case *kmsg.BrokerRegistrationRequest:
		return f.register(r), false
	case *kmsg.BrokerHeartbeatRequest:
		return f.heartbeat(r), false
	case *kmsg.CreateTopicsRequest:
		return f.createTopics(r), false
	case *kmsg.EnvelopeRequest:
		return f.envelope(r), false
	case *kmsg.AllocateProducerIDsRequest:
		resp := r.ResponseKind().(*kmsg.AllocateProducerIDsResponse)
		start, err := f.store.AllocateProducerIDs(1)
		if err != nil {
			resp.ErrorCode = kerr.UnknownServerError.Code
		}
		resp.ProducerIDStart, resp.ProducerIDLen = start, 1
		return resp, false
	}
	f.t.Errorf("fake controller: no answer for %s", kmsg.NameForKey(req.Key()))
	return nil, true
}

// metadataFetch serves the store's batches from the fetch offset, or a
// SnapshotID when the offset is below the log's start or not in it; a
// caught-up fetch waits a little, as a long poll would.
func (f *fakeController) metadataFetch(r *kmsg.FetchRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.FetchResponse)
	rp := r.Topics[0].Partitions[0]
	t := kmsg.NewFetchResponseTopic()
	t.Topic, t.TopicID = r.Topics[0].Topic, r.Topics[0].TopicID
	p := kmsg.NewFetchResponseTopicPartition()
	f.mu.Lock()
	start := f.logStart
	f.mu.Unlock()
	for tries := 0; ; tries++ {
		batches, err := f.store.BatchesFrom(rp.FetchOffset, int(max(rp.PartitionMaxBytes, 1)))
		p.HighWatermark = f.store.End()
		if rp.FetchOffset < start {
			err = controller.ErrSnapshotNeeded
		}
		switch {
		case errors.Is(err, controller.ErrSnapshotNeeded):
			p.SnapshotID.EndOffset, p.SnapshotID.Epoch = p.HighWatermark, 0
		case err != nil:
			p.ErrorCode = kerr.KafkaStorageError.Code
		case len(batches) > 0:
			if p.RecordBatches, err = controller.EncodeBatches(batches, 0); err != nil {
				p.ErrorCode = kerr.UnknownServerError.Code
			}
		case r.MaxWaitMillis > 0 && tries < 5:
			time.Sleep(5 * time.Millisecond)
			continue
		}
		break
	}
	f.mu.Lock()
	if f.epoch >= 0 {
		p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch = f.id, f.epoch
	}
	f.mu.Unlock()
	t.Partitions = append(t.Partitions, p)
	resp.Topics = append(resp.Topics, t)
	return resp
}

// notController is a standby's answer to the controller APIs.
func (f *fakeController) notController(req kmsg.Request) kmsg.Response {
	code := kerr.NotController.Code
	switch r := req.(type) {
	case *kmsg.FetchRequest:
		resp := r.ResponseKind().(*kmsg.FetchResponse)
		t := kmsg.NewFetchResponseTopic()
		t.Topic, t.TopicID = r.Topics[0].Topic, r.Topics[0].TopicID
		p := kmsg.NewFetchResponseTopicPartition()
		f.mu.Lock()
		p.ErrorCode, p.CurrentLeader = f.notLeader, f.hint
		f.mu.Unlock()
		t.Partitions = append(t.Partitions, p)
		resp.Topics = append(resp.Topics, t)
		return resp
	case *kmsg.FetchSnapshotRequest:
		resp := r.ResponseKind().(*kmsg.FetchSnapshotResponse)
		t := kmsg.NewFetchSnapshotResponseTopic()
		t.Topic = r.Topics[0].Topic
		p := kmsg.NewFetchSnapshotResponseTopicPartition()
		p.ErrorCode = code
		t.Partitions = append(t.Partitions, p)
		resp.Topics = append(resp.Topics, t)
		return resp
	case *kmsg.CreateTopicsRequest:
		resp := r.ResponseKind().(*kmsg.CreateTopicsResponse)
		for _, rt := range r.Topics {
			t := kmsg.NewCreateTopicsResponseTopic()
			t.Topic, t.ErrorCode = rt.Topic, code
			resp.Topics = append(resp.Topics, t)
		}
		return resp
	case *kmsg.BrokerRegistrationRequest:
		resp := r.ResponseKind().(*kmsg.BrokerRegistrationResponse)
		resp.ErrorCode, resp.BrokerEpoch = code, -1
		return resp
	case *kmsg.BrokerHeartbeatRequest:
		resp := r.ResponseKind().(*kmsg.BrokerHeartbeatResponse)
		resp.ErrorCode = code
		return resp
	case *kmsg.AllocateProducerIDsRequest:
		resp := r.ResponseKind().(*kmsg.AllocateProducerIDsResponse)
		resp.ErrorCode = code
		return resp
	case *kmsg.AlterPartitionRequest:
		resp := r.ResponseKind().(*kmsg.AlterPartitionResponse)
		resp.ErrorCode = code
		return resp
	case *kmsg.EnvelopeRequest:
		resp := r.ResponseKind().(*kmsg.EnvelopeResponse)
		resp.ErrorCode = code
		return resp
	}
	f.t.Errorf("fake controller %d: no standby answer for %s", f.id, kmsg.NameForKey(req.Key()))
	return req.ResponseKind()
}

// fetchSnapshot serves the store's snapshot in chunks of the request's
// MaxBytes.
func (f *fakeController) fetchSnapshot(r *kmsg.FetchSnapshotRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.FetchSnapshotResponse)
	snap, end, err := f.store.Snapshot()
	if err != nil {
		resp.ErrorCode = kerr.UnknownServerError.Code
		return resp
	}
	rp := r.Topics[0].Partitions[0]
	t := kmsg.NewFetchSnapshotResponseTopic()
	t.Topic = r.Topics[0].Topic
	p := kmsg.NewFetchSnapshotResponseTopicPartition()
	p.SnapshotID.EndOffset, p.SnapshotID.Epoch = end, 0
	p.Size, p.Position = int64(len(snap)), rp.Position
	if rp.SnapshotID.EndOffset >= 0 && rp.SnapshotID.EndOffset != end {
		p.ErrorCode = kerr.SnapshotNotFound.Code
	} else {
		from := min(rp.Position, int64(len(snap)))
		p.Bytes = snap[from:min(from+int64(max(r.MaxBytes, 1)), int64(len(snap)))]
	}
	t.Partitions = append(t.Partitions, p)
	resp.Topics = append(resp.Topics, t)
	return resp
}

// register decides a BrokerRegistration as the controller does; no broker
// holds a live session here (sessions are the broker package's).
func (f *fakeController) register(r *kmsg.BrokerRegistrationRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.BrokerRegistrationResponse)
	resp.BrokerEpoch = -1
	reg := controller.BrokerRegistration{ID: r.BrokerID, ClusterID: r.ClusterID, Incarnation: r.IncarnationID, Rack: r.Rack,
		PreviousBrokerEpoch: r.PreviousBrokerEpoch}
	for _, l := range r.Listeners {
		reg.Endpoints = append(reg.Endpoints, controller.Endpoint{Name: l.Name, Host: l.Host, Port: int32(l.Port)})
	}
	img, err := f.store.Commit(func(s *controller.State) ([]controller.Record, error) {
		return s.PlanRegisterBroker(reg, false, f.pol)
	})
	if err != nil {
		resp.ErrorCode = kerr.UnknownServerError.Code
		if errors.Is(err, controller.ErrInconsistentClusterID) {
			resp.ErrorCode = kerr.InconsistentClusterID.Code
		}
		return resp
	}
	br, _ := img.Broker(r.BrokerID)
	resp.BrokerEpoch = br.Epoch
	return resp
}

// heartbeat decides a BrokerHeartbeat with every broker's offsets taken as
// reached.
func (f *fakeController) heartbeat(r *kmsg.BrokerHeartbeatRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.BrokerHeartbeatResponse)
	hr := controller.Heartbeat{BrokerID: r.BrokerID, BrokerEpoch: r.BrokerEpoch, MetadataOffset: r.CurrentMetadataOffset,
		WantFence: r.WantFence, WantShutDown: r.WantShutdown}
	var reply controller.HeartbeatReply
	_, err := f.store.Commit(func(s *controller.State) ([]controller.Record, error) {
		rep, rs, err := s.PlanBrokerHeartbeat(hr, nil, f.pol)
		reply = rep
		return rs, err
	})
	if err != nil {
		resp.ErrorCode = kerr.UnknownServerError.Code
		if errors.Is(err, controller.ErrStaleBrokerEpoch) {
			resp.ErrorCode = kerr.StaleBrokerEpoch.Code
		}
		return resp
	}
	resp.IsCaughtUp, resp.IsFenced, resp.ShouldShutdown = reply.IsCaughtUp, reply.IsFenced, reply.ShouldShutDown
	return resp
}

// createTopics creates each topic with the partitions and replication
// factor asked, or says why not.
func (f *fakeController) createTopics(r *kmsg.CreateTopicsRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.CreateTopicsResponse)
	for _, rt := range r.Topics {
		t := kmsg.NewCreateTopicsResponseTopic()
		t.Topic = rt.Topic
		nt := controller.NewTopic{Name: rt.Topic, ID: controller.NewTopicID(), Partitions: rt.NumPartitions, ReplicationFactor: rt.ReplicationFactor}
		_, err := f.store.Commit(func(s *controller.State) ([]controller.Record, error) { return s.PlanCreateTopic(nt, 1000) })
		switch {
		case errors.Is(err, controller.ErrTopicExists):
			t.ErrorCode = kerr.TopicAlreadyExists.Code
		case err != nil:
			t.ErrorCode = kerr.InvalidReplicationFactor.Code
			msg := err.Error()
			t.ErrorMessage = &msg
		default:
			t.TopicID = nt.ID
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}

// envelope answers the request inside an Envelope as if it came alone.
func (f *fakeController) envelope(r *kmsg.EnvelopeRequest) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.EnvelopeResponse)
	h, body, err := netio.ReadRequestHeader(r.RequestData)
	if err != nil {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp
	}
	inner := kmsg.RequestForKey(h.Key)
	inner.SetVersion(h.Version)
	if err := inner.ReadFrom(body); err != nil {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp
	}
	answer, drop := f.handle(inner)
	if drop {
		resp.ErrorCode = kerr.UnknownServerError.Code
		return resp
	}
	answer.SetVersion(h.Version)
	resp.ResponseData = frameResponse(h.Key, h.Version, h.CorrelationID, answer)[4:]
	return resp
}
