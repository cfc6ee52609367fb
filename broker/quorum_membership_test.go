package broker

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/caspaxos"
	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/internal/testkit"
	"github.com/sluice-io/sluice/netio"
	"github.com/sluice-io/sluice/segment"
	"github.com/sluice-io/sluice/voter"
)

// rawAt is a raw connection to addr (a broker or a CONTROLLER listener)
// that waits long enough for a membership change.
func rawAt(t *testing.T, addr string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(60 * time.Second))
	return &rawConn{t: t, nc: nc, fr: netio.NewFrameReader(nc, 1<<30)}
}

func addVoterReq(clusterID string, id int32, inc [16]byte, host string, port uint16) *kmsg.AddRaftVoterRequest {
	req := kmsg.NewPtrAddRaftVoterRequest()
	req.ClusterID, req.TimeoutMillis, req.VoterID, req.VoterDirectoryID = kmsg.StringPtr(clusterID), 20000, id, inc
	l := kmsg.NewAddRaftVoterRequestListener()
	l.Name, l.Host, l.Port = "CONTROLLER", host, port
	req.Listeners = append(req.Listeners, l)
	return req
}

func removeVoterReq(clusterID string, v caspaxos.Voter) *kmsg.RemoveRaftVoterRequest {
	req := kmsg.NewPtrRemoveRaftVoterRequest()
	req.ClusterID, req.VoterID, req.VoterDirectoryID = kmsg.StringPtr(clusterID), v.ID, v.Incarnation
	return req
}

// addVoter sends AddRaftVoter to addr until it gets an answer that is not
// retriable (a controller moving, a forward that timed out).
func addVoter(t *testing.T, addr string, req *kmsg.AddRaftVoterRequest) *kmsg.AddRaftVoterResponse {
	t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	for {
		resp := do[*kmsg.AddRaftVoterResponse](rawAt(t, addr), req, 1)
		if (resp.ErrorCode != kerr.NotController.Code && resp.ErrorCode != kerr.RequestTimedOut.Code) || time.Now().After(deadline) {
			return resp
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func controllerPort(t *testing.T, tb *testBroker) uint16 {
	t.Helper()
	_, port, err := net.SplitHostPort(tb.ctrlListener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	var p uint16
	fmt.Sscan(port, &p)
	return p
}

func votersArg(tb *testBroker) []string {
	var out []string
	for _, v := range tb.cfg.Voters {
		out = append(out, fmt.Sprintf("%d@%s", v.ID, v.Addr()))
	}
	return out
}

// A voter whose directory is wiped comes back as a new incarnation that
// never counts; AddRaftVoter with its new directory id, sent to another
// broker (forwarded to the active controller), re-admits it by replacing
// the old incarnation: DescribeQuorum lists the new one, it enters the
// metadata ISR, a restart keeps the membership, and once the active
// controller stops, the two voters left (the re-admitted one among them)
// elect a new one, which the old membership could not have done.
func TestQuorumReadmitWipedVoter(t *testing.T) {
	nodes, dirs := startQuorumNodes(t, 3)
	active := activeController(t, nodes, 15*time.Second, -1)
	waitUnfenced(t, nodes[0], 1, 2, 3)
	wiped := active%3 + 1
	third := 6 - active - wiped
	old := nodes[wiped-1].ctrl.self
	port := controllerPort(t, nodes[wiped-1])
	voters := votersArg(nodes[0])
	clusterID := nodes[active-1].ctrl.v.Register().ClusterID
	ctx := context.Background()

	if err := nodes[wiped-1].Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	dirs[wiped-1] = t.TempDir() // the wiped disk
	w, err := tryStart(t, segment.OSFS(), dirs[wiped-1], quorumNodeConfig(int(wiped), int(port), voters, nil)...)
	if err != nil {
		t.Fatalf("restart the wiped voter: %v", err)
	}
	nodes[wiped-1] = w
	fresh := w.ctrl.self
	if fresh.ID != wiped || fresh.Incarnation == old.Incarnation {
		t.Fatalf("the wiped voter came back as %s (was %s): want a new incarnation", fresh, old)
	}
	// Not a member: its proposers are outside the configuration, and the
	// register names only its old incarnation.
	if _, err := w.ctrl.v.ReadRegister(ctx); !errors.Is(err, voter.ErrNotMember) {
		t.Fatalf("the wiped voter read the register (%v): it must not be a member", err)
	}
	if reg := nodes[active-1].ctrl.v.Register(); reg.IsVoter(fresh) || reg.InISR(fresh) || !reg.IsVoter(old) {
		t.Fatalf("register before the change: voters %v, ISR %v", memberVoters(reg.Voters), reg.ISR)
	}

	// Refusals, each through the broker listener of the third node
	// (forwarded) and with no change made.
	via := nodes[third-1].addr
	var wrongInc [16]byte
	_, _ = rand.Read(wrongInc[:])
	cases := []struct {
		name string
		req  kmsg.Request
		want int16
	}{
		{"wrong cluster id", addVoterReq("not-this-cluster", wiped, fresh.Incarnation, "127.0.0.1", port), kerr.InconsistentClusterID.Code},
		{"duplicate voter", addVoterReq(clusterID, third, nodes[third-1].ctrl.self.Incarnation, "127.0.0.1", controllerPort(t, nodes[third-1])), kerr.DuplicateVoter.Code},
		{"incarnation the node does not run", addVoterReq(clusterID, wiped, wrongInc, "127.0.0.1", port), kerr.InvalidRequest.Code},
		{"no controller endpoint", func() kmsg.Request {
			r := addVoterReq(clusterID, wiped, fresh.Incarnation, "127.0.0.1", port)
			r.Listeners[0].Name = "PLAINTEXT"
			return r
		}(), kerr.InvalidRequest.Code},
		{"unknown voter", removeVoterReq(clusterID, fresh), kerr.VoterNotFound.Code},
		{"remove with a wrong cluster id", removeVoterReq("not-this-cluster", old), kerr.InconsistentClusterID.Code},
		{"the active controller itself", removeVoterReq(clusterID, nodes[active-1].ctrl.self), kerr.InvalidRequest.Code},
	}
	for _, c := range cases {
		var code int16
		testkit.Eventually(t, 20*time.Second, c.name+": a non-retriable answer", func() bool {
			switch r := do[kmsg.Response](rawAt(t, via), c.req, c.req.GetVersion()).(type) {
			case *kmsg.AddRaftVoterResponse:
				code = r.ErrorCode
			case *kmsg.RemoveRaftVoterResponse:
				code = r.ErrorCode
			}
			return code != kerr.NotController.Code && code != kerr.RequestTimedOut.Code
		})
		if code != c.want {
			t.Errorf("%s: error %d (%v), want %d", c.name, code, kerr.ErrorForCode(code), c.want)
		}
	}
	// A voter that is not the active controller answers NOT_CONTROLLER on
	// its CONTROLLER listener, so a sender finds the active one.
	if r := do[*kmsg.RemoveRaftVoterResponse](rawAt(t, nodes[third-1].ctrlListener.Addr().String()), removeVoterReq(clusterID, old), 0); r.ErrorCode != kerr.NotController.Code {
		t.Fatalf("RemoveRaftVoter at a voter that is not active: error %d, want NOT_CONTROLLER", r.ErrorCode)
	}
	if reg := nodes[active-1].ctrl.v.Register(); !reg.IsVoter(old) || reg.IsVoter(fresh) || reg.Change != nil {
		t.Fatalf("a refused request changed the register: voters %v, change %+v", memberVoters(reg.Voters), reg.Change)
	}

	// Re-admit the new incarnation.
	if r := addVoter(t, via, addVoterReq(clusterID, wiped, fresh.Incarnation, "127.0.0.1", port)); r.ErrorCode != 0 {
		t.Fatalf("AddRaftVoter(%s): error %d: %s", fresh, r.ErrorCode, strOrEmpty(r.ErrorMessage))
	}
	reg := nodes[active-1].ctrl.v.Register()
	if !reg.IsVoter(fresh) || reg.IsVoter(old) || len(reg.Voters) != 3 {
		t.Fatalf("register after AddRaftVoter: voters %v", memberVoters(reg.Voters))
	}
	// DescribeQuorum names the new incarnation as wiped's directory id,
	// with its endpoint.
	testkit.EventuallyNil(t, 20*time.Second, func() error {
		resp := describeQuorum(t, nodes[third-1], 2, controller.MetadataTopic)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
			return fmt.Errorf("DescribeQuorum: %+v", resp)
		}
		p := resp.Topics[0].Partitions[0]
		var ids []string
		found := false
		for _, v := range p.CurrentVoters {
			ids = append(ids, fmt.Sprintf("%d/%x", v.ReplicaID, v.ReplicaDirectoryID))
			if v.ReplicaID == wiped {
				found = v.ReplicaDirectoryID == fresh.Incarnation
			}
		}
		if len(p.CurrentVoters) != 3 || !found {
			return fmt.Errorf("DescribeQuorum voters %v, want 3 with %d/%x", ids, wiped, fresh.Incarnation)
		}
		if len(resp.Nodes) != 3 {
			return fmt.Errorf("DescribeQuorum nodes %+v, want 3", resp.Nodes)
		}
		return nil
	})
	// It catches up and enters the metadata ISR; every voter persists
	// the new membership.
	testkit.Eventually(t, 20*time.Second, "the re-admitted voter to enter the metadata ISR", func() bool {
		return nodes[active-1].ctrl.v.Register().InISR(fresh)
	})
	for i, dir := range dirs {
		testkit.EventuallyNil(t, 10*time.Second, func() error {
			sq, err := readSettledVoters(segment.OSFS(), filepath.Join(dir, quorumVoterDir), "CONTROLLER")
			if err != nil || sq == nil {
				return fmt.Errorf("node %d: settled voters %v, %v", i+1, sq, err)
			}
			if vs := memberVoters(sq.Voters); !slices.Contains(vs, fresh) || slices.Contains(vs, old) || sq.ClusterID != clusterID {
				return fmt.Errorf("node %d persisted voters %v of cluster %q", i+1, vs, sq.ClusterID)
			}
			return nil
		})
	}

	// A restart keeps the membership: the re-admitted voter comes back a
	// member (its proposers in the configuration, so it reads).
	if err := w.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	w, err = tryStart(t, segment.OSFS(), dirs[wiped-1], quorumNodeConfig(int(wiped), int(port), voters, nil)...)
	if err != nil {
		t.Fatalf("restart the re-admitted voter: %v", err)
	}
	nodes[wiped-1] = w
	if w.ctrl.self != fresh {
		t.Fatalf("restarted as %s, want %s", w.ctrl.self, fresh)
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := w.ctrl.v.ReadRegister(rctx); err != nil {
		t.Fatalf("the restarted re-admitted voter cannot read the register: %v", err)
	}
	testkit.Eventually(t, 20*time.Second, "the restarted voter to be back in the metadata ISR", func() bool {
		return nodes[active-1].ctrl.v.Register().InISR(fresh)
	})
	// It bootstrapped (a read) with the register's cluster id, which no
	// longer derives from the voter set.
	if err := w.ctrl.v.Err(); err != nil {
		t.Fatalf("the restarted re-admitted voter stopped: %v", err)
	}

	// The quorum really uses it: with the active controller stopped, the
	// re-admitted voter and the third one are a majority only if the new
	// incarnation's acceptor counts.
	if err := nodes[active-1].Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	rest := []*testBroker{nodes[wiped-1], nodes[third-1]}
	next := activeController(t, rest, 20*time.Second, active)
	t.Logf("controller %d stopped; %d took over with the re-admitted voter %s", active, next, fresh)
	cctx, ccancel := context.WithTimeout(ctx, 20*time.Second)
	defer ccancel()
	adm := kadm.NewClient(rest[0].client(t, kgo.RetryTimeout(20*time.Second)))
	for {
		_, err := adm.CreateTopic(cctx, 1, 2, nil, "after-readmission")
		if err == nil {
			break
		}
		if cctx.Err() != nil {
			t.Fatalf("no topic could be created after the failover: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ApiVersions of a quorum's node advertises the membership APIs.
func TestQuorumAdvertisesRaftVoterAPIs(t *testing.T) {
	nodes, _ := startQuorumNodes(t, 2)
	av := do[*kmsg.ApiVersionsResponse](rawAt(t, nodes[0].addr), kmsg.NewPtrApiVersionsRequest(), 3)
	var keys []int16
	for _, k := range av.ApiKeys {
		keys = append(keys, k.ApiKey)
	}
	for _, want := range []kmsg.Key{kmsg.AddRaftVoter, kmsg.RemoveRaftVoter} {
		if !slices.Contains(keys, want.Int16()) {
			t.Errorf("ApiVersions of a quorum node lacks %s: %v", want.Name(), keys)
		}
	}
}

// describeVoters is the voters DescribeQuorum through tb lists, as
// id/directory id.
func describeVoters(t *testing.T, tb *testBroker) ([]caspaxos.Voter, error) {
	t.Helper()
	resp := describeQuorum(t, tb, 2, controller.MetadataTopic)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		return nil, fmt.Errorf("DescribeQuorum: %+v", resp)
	}
	var out []caspaxos.Voter
	for _, v := range resp.Topics[0].Partitions[0].CurrentVoters {
		out = append(out, caspaxos.Voter{ID: v.ReplicaID, Incarnation: v.ReplicaDirectoryID})
	}
	return out, nil
}

func waitDescribedVoters(t *testing.T, tb *testBroker, want []caspaxos.Voter) {
	t.Helper()
	testkit.EventuallyNil(t, 20*time.Second, func() error {
		got, err := describeVoters(t, tb)
		if err != nil {
			return err
		}
		if !sameVoterSet(got, want) {
			return fmt.Errorf("DescribeQuorum voters %v, want %v", got, want)
		}
		return nil
	})
}

func removeVoter(t *testing.T, addr string, req *kmsg.RemoveRaftVoterRequest) *kmsg.RemoveRaftVoterResponse {
	t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	for {
		resp := do[*kmsg.RemoveRaftVoterResponse](rawAt(t, addr), req, 0)
		if (resp.ErrorCode != kerr.NotController.Code && resp.ErrorCode != kerr.RequestTimedOut.Code) || time.Now().After(deadline) {
			return resp
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func createTopicVia(t *testing.T, tb *testBroker, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	adm := kadm.NewClient(tb.client(t, kgo.RetryTimeout(20*time.Second)))
	for {
		_, err := adm.CreateTopic(ctx, 1, 1, nil, name)
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A fourth controller, started with itself among controller.quorum.voters
// after the quorum settled on three, runs as a non-member until
// AddRaftVoter adds it: it enters the metadata ISR, and RemoveRaftVoter
// takes it out again. Removing a live voter of the original three (it
// leaves the ISR first) and adding the same incarnation back works too.
func TestQuorumAddAndRemoveVoters(t *testing.T) {
	nodes, _ := startQuorumNodes(t, 3)
	active := activeController(t, nodes, 15*time.Second, -1)
	waitUnfenced(t, nodes[0], 1, 2, 3)
	other := active%3 + 1
	via := nodes[other-1].addr
	clusterID := nodes[active-1].ctrl.v.Register().ClusterID
	var three []caspaxos.Voter
	for _, n := range nodes {
		three = append(three, n.ctrl.self)
	}
	ctx := context.Background()

	p4 := testkit.FreePorts(t, 1)[0]
	n4, err := tryStart(t, segment.OSFS(), t.TempDir(), quorumNodeConfig(4, p4, append(votersArg(nodes[0]), fmt.Sprintf("4@127.0.0.1:%d", p4)), nil)...)
	if err != nil {
		t.Fatalf("start a fourth controller: %v", err)
	}
	v4 := n4.ctrl.self
	if _, err := n4.ctrl.v.ReadRegister(ctx); !errors.Is(err, voter.ErrNotMember) {
		t.Fatalf("the fourth controller read the register before it was added (%v)", err)
	}
	if r := addVoter(t, via, addVoterReq(clusterID, 4, v4.Incarnation, "127.0.0.1", uint16(p4))); r.ErrorCode != 0 {
		t.Fatalf("AddRaftVoter(%s): error %d: %s", v4, r.ErrorCode, strOrEmpty(r.ErrorMessage))
	}
	four := append(slices.Clone(three), v4)
	waitDescribedVoters(t, nodes[other-1], four)
	testkit.Eventually(t, 20*time.Second, "the added voter to enter the metadata ISR", func() bool {
		return nodes[active-1].ctrl.v.Register().InISR(v4)
	})
	if _, err := n4.ctrl.v.ReadRegister(ctx); err != nil {
		t.Fatalf("the added voter cannot read the register: %v", err)
	}
	createTopicVia(t, nodes[other-1], "with-four")

	if r := removeVoter(t, via, removeVoterReq(clusterID, v4)); r.ErrorCode != 0 {
		t.Fatalf("RemoveRaftVoter(%s): error %d: %s", v4, r.ErrorCode, strOrEmpty(r.ErrorMessage))
	}
	if reg := nodes[active-1].ctrl.v.Register(); reg.IsVoter(v4) || reg.InISR(v4) || len(reg.Voters) != 3 {
		t.Fatalf("register after RemoveRaftVoter: voters %v, ISR %v", memberVoters(reg.Voters), reg.ISR)
	}
	waitDescribedVoters(t, nodes[other-1], three)
	createTopicVia(t, nodes[other-1], "with-three")

	// A live voter of the three: out of the ISR, out of the quorum, and
	// back in with the same incarnation.
	gone := nodes[other-1].ctrl.self
	if r := removeVoter(t, nodes[active-1].addr, removeVoterReq(clusterID, gone)); r.ErrorCode != 0 {
		t.Fatalf("RemoveRaftVoter(%s): error %d: %s", gone, r.ErrorCode, strOrEmpty(r.ErrorMessage))
	}
	two := slices.DeleteFunc(slices.Clone(three), func(v caspaxos.Voter) bool { return v == gone })
	waitDescribedVoters(t, nodes[active-1], two)
	if r := addVoter(t, nodes[active-1].addr, addVoterReq(clusterID, gone.ID, gone.Incarnation, "127.0.0.1", controllerPort(t, nodes[other-1]))); r.ErrorCode != 0 {
		t.Fatalf("AddRaftVoter(%s) back: error %d: %s", gone, r.ErrorCode, strOrEmpty(r.ErrorMessage))
	}
	waitDescribedVoters(t, nodes[active-1], three)
	testkit.Eventually(t, 20*time.Second, "the voter added back to enter the metadata ISR", func() bool {
		return nodes[active-1].ctrl.v.Register().InISR(gone)
	})
}

// quorum-voters.json: the first format (the voters' array) still reads,
// with the cluster id derived from the set; after a change the file holds
// the register's cluster id and each voter's endpoint, which read back as
// written; a damaged file is an error, never a new gathering.
func TestSettledVotersFile(t *testing.T) {
	fsys := segment.OSFS()
	dir := t.TempDir()
	a := caspaxos.Voter{ID: 1, Incarnation: [16]byte{1}}
	b := caspaxos.Voter{ID: 2, Incarnation: [16]byte{2}}
	old := `[{"id":1,"incarnation":"01000000000000000000000000000000"},{"id":2,"incarnation":"02000000000000000000000000000000"}]`
	if err := segment.WriteFileAtomic(fsys, filepath.Join(dir, quorumVotersFile), []byte(old)); err != nil {
		t.Fatal(err)
	}
	sq, err := readSettledVoters(fsys, dir, "CONTROLLER")
	if err != nil || sq == nil || !sameVoterSet(memberVoters(sq.Voters), []caspaxos.Voter{a, b}) || sq.ClusterID != "" {
		t.Fatalf("first format: %+v, %v", sq, err)
	}
	if sq.clusterID() != quorumClusterID([]caspaxos.Voter{a, b}) {
		t.Fatalf("first format's cluster id %q, want the one derived from its voters", sq.clusterID())
	}

	changed := settledQuorum{ClusterID: "the-register's", Voters: []caspaxos.Member{
		{Voter: a}, {Voter: b, Endpoints: []caspaxos.Endpoint{{Name: "CONTROLLER", Host: "h2", Port: 9094}}}}}
	var told settledQuorum
	if err := persistVoters(fsys, dir, changed, func(s settledQuorum) { told = s }, testLogger(), "test"); err != nil {
		t.Fatal(err)
	}
	sq, err = readSettledVoters(fsys, dir, "CONTROLLER")
	if err != nil || sq == nil || sq.ClusterID != "the-register's" || sq.clusterID() != "the-register's" || told.ClusterID != "the-register's" {
		t.Fatalf("after a change: %+v, %v", sq, err)
	}
	if len(sq.Voters) != 2 || len(sq.Voters[0].Endpoints) != 0 || len(sq.Voters[1].Endpoints) != 1 || sq.Voters[1].Endpoints[0] != changed.Voters[1].Endpoints[0] {
		t.Fatalf("voters read back %+v, want %+v", sq.Voters, changed.Voters)
	}

	if err := segment.WriteFileAtomic(fsys, filepath.Join(dir, quorumVotersFile), []byte(`{"voters":`)); err != nil {
		t.Fatal(err)
	}
	if sq, err := readSettledVoters(fsys, dir, "CONTROLLER"); err == nil {
		t.Fatalf("a damaged file read as %+v", sq)
	}
	if sq, err := readSettledVoters(fsys, t.TempDir(), "CONTROLLER"); err != nil || sq != nil {
		t.Fatalf("no file: %+v, %v; want none and no error", sq, err)
	}
}

// A node whose controller is not a quorum does not advertise the
// membership APIs, and answers them UNSUPPORTED_VERSION, as Kafka does
// without a dynamic quorum.
func TestRaftVoterAPIsWithoutQuorum(t *testing.T) {
	tb := startTestBroker(t)
	r := do[*kmsg.AddRaftVoterResponse](rawAt(t, tb.addr), addVoterReq("", 2, [16]byte{1}, "127.0.0.1", 9093), 1)
	if r.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("AddRaftVoter on a single node: error %d, want UNSUPPORTED_VERSION", r.ErrorCode)
	}
	rr := do[*kmsg.RemoveRaftVoterResponse](rawAt(t, tb.addr), removeVoterReq("", caspaxos.Voter{ID: 1, Incarnation: [16]byte{1}}), 0)
	if rr.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("RemoveRaftVoter on a single node: error %d, want UNSUPPORTED_VERSION", rr.ErrorCode)
	}
}

// RemoveRaftVoter of a voter that is down removes it, as in Kafka
// (KIP-853): the change is planned without it and goes on without its
// acknowledgements. The two left keep a controller and serve metadata.
func TestQuorumRemoveDownVoter(t *testing.T) {
	nodes, _ := startQuorumNodes(t, 3)
	active := activeController(t, nodes, 15*time.Second, -1)
	waitUnfenced(t, nodes[0], 1, 2, 3)
	via := active%3 + 1
	down := 6 - active - via
	clusterID := nodes[active-1].ctrl.v.Register().ClusterID
	gone := nodes[down-1].ctrl.self
	if err := nodes[down-1].Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := removeVoter(t, nodes[via-1].addr, removeVoterReq(clusterID, gone)); r.ErrorCode != 0 {
		t.Fatalf("RemoveRaftVoter of a voter that is down: error %d (%s)", r.ErrorCode, strOrEmpty(r.ErrorMessage))
	}
	rest := []*testBroker{nodes[active-1], nodes[via-1]}
	c := activeController(t, rest, 10*time.Second, -1)
	reg := nodes[c-1].ctrl.v.Register()
	if reg.Change != nil || reg.IsVoter(gone) || reg.InISR(gone) || len(reg.Voters) != 2 {
		t.Fatalf("register after RemoveRaftVoter: voters %v, ISR %v, change %+v", memberVoters(reg.Voters), reg.ISR, reg.Change)
	}
	waitDescribedVoters(t, nodes[via-1], memberVoters(reg.Voters))
	createTopicVia(t, nodes[via-1], "after-removal")
}

// RemoveRaftVoter while a voter that stays is down is refused before
// anything changes: every step needs the voters of the new membership.
// The controller stays and the register is unchanged.
func TestQuorumRemoveVoterRefusedWhileAVoterIsDown(t *testing.T) {
	nodes, _ := startQuorumNodes(t, 3)
	active := activeController(t, nodes, 15*time.Second, -1)
	waitUnfenced(t, nodes[0], 1, 2, 3)
	leaving := active%3 + 1
	down := 6 - active - leaving
	clusterID := nodes[active-1].ctrl.v.Register().ClusterID
	if err := nodes[down-1].Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	var r *kmsg.RemoveRaftVoterResponse
	testkit.Eventually(t, 20*time.Second, "an answer from the active controller", func() bool {
		r = do[*kmsg.RemoveRaftVoterResponse](rawAt(t, nodes[leaving-1].addr), removeVoterReq(clusterID, nodes[leaving-1].ctrl.self), 0)
		return r.ErrorCode != kerr.NotController.Code
	})
	if r.ErrorCode != kerr.RequestTimedOut.Code || !strings.Contains(strOrEmpty(r.ErrorMessage), fmt.Sprintf("voter %d at", down)) {
		t.Fatalf("RemoveRaftVoter while voter %d is down: error %d (%s), want REQUEST_TIMED_OUT naming it", down, r.ErrorCode, strOrEmpty(r.ErrorMessage))
	}
	reg := nodes[active-1].ctrl.v.Register()
	if reg.Change != nil || len(reg.Voters) != 3 {
		t.Fatalf("register after a refused RemoveRaftVoter: voters %v, change %+v", memberVoters(reg.Voters), reg.Change)
	}
	rest := []*testBroker{nodes[active-1], nodes[leaving-1]}
	if c := activeController(t, rest, 10*time.Second, -1); c != active {
		t.Fatalf("controller %d after the refusal, want %d still", c, active)
	}
	createTopicVia(t, nodes[leaving-1], "after-refusal")
}
