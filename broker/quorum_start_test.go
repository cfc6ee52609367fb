package broker

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/config"
	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/internal/testkit"
)

// A voter serves its CONTROLLER listener while it still gathers the other
// voters' identities, before its voter and metadata log exist. Kafka
// requests that reach it then (a broker's metadata fetch, CreateTopics)
// are refused, never handed to code that reads the role's fields while
// start still sets them: CI caught that race (and a nil voter would
// panic) when a restarted voter was fetched from at once.
func TestQuorumVoterRefusesRequestsBeforeItsRoleStarts(t *testing.T) {
	ports := testkit.FreePorts(t, 3)
	var voters []string
	for i, p := range ports {
		voters = append(voters, fmt.Sprintf("%d@127.0.0.1:%d", i+1, p))
	}
	logs := &lockedBuffer{}
	start := func(id int, logger *slog.Logger) (*Broker, error) {
		cfg, err := config.Load("", []string{fmt.Sprintf("node.id=%d", id), "process.roles=controller",
			"controller.quorum.voters=" + strings.Join(voters, ","), "controller.listener.names=CONTROLLER",
			fmt.Sprintf("listeners=CONTROLLER://127.0.0.1:%d", ports[id-1]), "admin.listener=", "log.dirs=" + t.TempDir(),
			"broker.session.timeout.ms=3000"})
		if err != nil {
			return nil, err
		}
		b, err := New(cfg, logger)
		if err == nil {
			err = b.Listen()
			t.Cleanup(func() { _ = b.Shutdown(context.Background()) })
		}
		return b, err
	}
	// Voter 1 alone: it waits in New for the others' identities.
	first := make(chan error, 1)
	go func() {
		_, err := start(1, slog.New(slog.NewTextHandler(logs, nil)))
		first <- err
	}()
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	testkit.Eventually(t, 10*time.Second, "voter 1's CONTROLLER listener", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequestRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	seed := cl.SeedBrokers()[0]
	for range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		fetch := kmsg.NewPtrFetchRequest()
		fetch.ReplicaID, fetch.MaxWaitMillis, fetch.MaxBytes = -1, 100, 1<<20
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic, ft.TopicID = controller.MetadataTopic, controller.MetadataTopicID
		ft.Partitions = append(ft.Partitions, kmsg.NewFetchRequestTopicPartition())
		fetch.Topics = append(fetch.Topics, ft)
		if resp, err := seed.Request(ctx, fetch); err == nil {
			t.Errorf("a metadata fetch before the role started was answered: %+v", resp)
		}
		create := kmsg.NewPtrCreateTopicsRequest()
		ct := kmsg.NewCreateTopicsRequestTopic()
		ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "early", 1, 1
		create.Topics = append(create.Topics, ct)
		resp, err := seed.Request(ctx, create)
		cancel()
		if err != nil {
			t.Fatalf("CreateTopics before the role started: %v", err)
		}
		if code := resp.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode; code != kerr.NotController.Code {
			t.Errorf("CreateTopics before the role started: error code %d, want NOT_CONTROLLER", code)
		}
	}
	select {
	case err := <-first:
		t.Fatalf("voter 1 started alone: %v", err)
	default:
	}
	// The others come: voter 1 starts, and nothing panicked meanwhile.
	var wg sync.WaitGroup
	for id := 2; id <= 3; id++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := start(id, testLogger()); err != nil {
				t.Errorf("voter %d: %v", id, err)
			}
		}()
	}
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatalf("voter 1: %v", err)
	}
	if l := logs.lines("panicked"); len(l) > 0 {
		t.Fatalf("voter 1 panicked on a request before its role started:\n%s", strings.Join(l, "\n"))
	}
}
