package replicamgr

import (
	"fmt"
	"path/filepath"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/config"
	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/replica"
)

// Changes is what an ApplyImage did that its caller acts on.
type Changes struct {
	// Removed are the topics gone from the image (deleted, or re-created
	// under a new id): their replicas are deleted, so requests waiting on
	// them can be answered now.
	Removed []Removed
	// Resigned are partitions this node led before the image and leads no
	// more (it follows them, no longer hosts them, or its replica went
	// offline taking the new epoch): requests waiting on them can be
	// answered now.
	Resigned []TopicPartition
	// Elected are partitions this node leads after the image and did not
	// lead before it (or leads in a new leader epoch). A partition whose
	// replica is offline here is not led.
	Elected []TopicPartition
	// Failed holds, per topic, why replicas of it that the image assigns
	// to this node could not be opened. Such a topic is left as it was
	// before the image (absent if it is new): what this call opened of it
	// is closed again, and none of its partitions changed role. A replica
	// that opened but could not take its role (BecomeLeader could not
	// write its epoch checkpoint) does not fail its topic: its partition
	// alone is offline (KAFKA_STORAGE_ERROR) until the broker restarts.
	Failed map[string]error
}

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Removed names a topic ApplyImage removed and how many partitions it had.
type Removed struct {
	Name       string
	Partitions int32
}

// Load opens every replica the image assigns to this node, as the broker
// starts, then sets aside (never deletes) partition directories that
// belong to none of them. It fails if any replica could not be opened
// (an offline one does not fail it: it is served as offline).
func (m *Manager) Load(img *controller.Image) error {
	m.admin.Lock()
	defer m.admin.Unlock()
	m.loading = true
	ch := m.applyLocked(img)
	m.loading = false
	for _, name := range img.TopicNames() {
		if err := ch.Failed[name]; err != nil {
			return err
		}
	}
	m.setStraysAside()
	return nil
}

// ApplyImage makes this node's replicas what the image says: it opens the
// replicas of partitions assigned to this node (choosing a log dir for new
// ones), gives each its role (Leader where the image names this node
// leader, else Follower), closes, keeping their files, replicas no longer
// assigned here, applies changed topic configs, and deletes the replicas
// of topics gone from the image. The replicas' role changes (a takeover
// makes thousands of followers leaders, each writing its epoch checkpoint)
// run ioWorkers at a time; see roles.go. An image older than one already
// applied is ignored. Calls are serialized.
func (m *Manager) ApplyImage(img *controller.Image) Changes {
	m.admin.Lock()
	defer m.admin.Unlock()
	return m.applyLocked(img)
}

func (m *Manager) applyLocked(img *controller.Image) Changes {
	var ch Changes
	if img.Offset() < m.applied {
		return ch // a newer image was applied already; this one would undo it
	}
	prev := m.image
	m.applied = img.Offset()
	m.image = img
	// Removals first, so a topic re-created under the same name never
	// finds its predecessor's replicas.
	for _, t := range m.Topics() {
		if mt, ok := img.Topic(t.Name); !ok || mt.ID != t.ID {
			m.remove(t)
			ch.Removed = append(ch.Removed, Removed{Name: t.Name, Partitions: int32(len(t.Partitions))})
		}
	}
	// A topic no record changed is the same *controller.Topic as in the
	// image applied before (the controller copies topics on write): with
	// the same brokers, nothing about it changed here either. Applying
	// every topic at every change cost a broker with thousands of
	// partitions longer than the changes took to come, after a restart.
	sameBrokers := prev != nil && equalBrokers(prev.Brokers(), img.Brokers())
	var todo []*controller.Topic
	for _, name := range img.TopicNames() {
		mt, _ := img.Topic(name)
		if pt, ok := prevTopic(prev, name); ok && pt == mt && sameBrokers && !m.failed[name] {
			continue
		}
		todo = append(todo, mt)
	}
	pre := m.preOpen(todo)
	defer m.closeUntaken(pre)
	var plans []*topicPlan
	for _, mt := range todo {
		p, err := m.planTopic(mt, pre)
		if err != nil {
			if ch.Failed == nil {
				ch.Failed = map[string]error{}
			}
			ch.Failed[mt.Name] = err
			continue
		}
		plans = append(plans, p)
	}
	m.giveRoles(plans) // roles.go: the replicas' role changes run in parallel
	for _, p := range plans {
		m.finishTopic(p, &ch)
	}
	m.failed = nil
	for name := range ch.Failed {
		if m.failed == nil {
			m.failed = map[string]bool{}
		}
		m.failed[name] = true // tried again with the next image
	}
	return ch
}

func prevTopic(img *controller.Image, name string) (*controller.Topic, bool) {
	if img == nil {
		return nil, false
	}
	return img.Topic(name)
}

// equalBrokers reports whether two images' brokers are the same in all
// that the replicas' roles read: registration, endpoints, fencing.
func equalBrokers(a, b []*controller.Broker) bool {
	return slices.EqualFunc(a, b, func(x, y *controller.Broker) bool {
		return x.ID == y.ID && x.Epoch == y.Epoch && x.Incarnation == y.Incarnation && x.Fenced == y.Fenced &&
			x.InControlledShutdown == y.InControlledShutdown && slices.Equal(x.Endpoints, y.Endpoints) &&
			((x.Rack == nil) == (y.Rack == nil)) && (x.Rack == nil || *x.Rack == *y.Rack)
	})
}

// roleOf is this node's role for a partition of the image.
func (m *Manager) roleOf(mp controller.Partition) Role {
	switch {
	case !slices.Contains(mp.Replicas, m.nodeID):
		return NotHosted
	case mp.Leader == m.nodeID:
		return Leader
	}
	return Follower
}

// topicPlan is one topic of the image on its way to being applied: its
// partitions as they will be published (t), with their replicas opened
// but their roles not taken yet (giveRoles does, for every topic of the
// image at once), and the replicas it no longer hosts.
type topicPlan struct {
	mt         *controller.Topic
	cfg        config.Topic
	old        *Topic // as last applied; nil if new here
	t          *Topic
	unassigned []*replica.Partition
}

// prev is partition i as last applied, nil if new here.
func (p *topicPlan) prev(i int) *Partition {
	if p.old == nil || i >= len(p.old.Partitions) {
		return nil
	}
	return &p.old.Partitions[i]
}

// planTopic builds the partitions of one topic of the image: it keeps the
// replicas this node hosts already, takes those preOpen opened from pre
// (or opens them) and lists those no longer hosted here. It fails if a
// replica could not be opened (a replica whose files cannot be read is
// not a failure: it is offline); what it opened is closed again then, and
// no partition of the topic has changed its role.
func (m *Manager) planTopic(mt *controller.Topic, pre map[partitionKey]*opened) (_ *topicPlan, err error) {
	m.topicApplies++
	cfg, err := m.cfg.TopicConfig(mt.Configs)
	if err != nil {
		return nil, fmt.Errorf("topic %s: %w", mt.Name, err)
	}
	p := &topicPlan{mt: mt, cfg: cfg, old: m.Topic(mt.Name)} // of mt's id: applyLocked removed any other
	p.t = &Topic{Name: mt.Name, ID: mt.ID, Config: cfg, Partitions: make([]Partition, len(mt.Partitions))}
	// On failure, close what this call opened: an open fails most often
	// because descriptors ran out, and the caller rolls the create back.
	var opened []*replica.Partition
	defer func() {
		if err != nil {
			m.closeAll(opened, "closing a partition of a failed open")
		}
	}()
	for i, mp := range mt.Partitions {
		np := Partition{Index: mp.Index, Role: m.roleOf(mp), LeaderEpoch: mp.LeaderEpoch}
		prev := p.prev(i)
		switch {
		case np.Role == NotHosted:
			if prev != nil && prev.Replica != nil {
				p.unassigned = append(p.unassigned, prev.Replica)
			}
		case prev != nil && prev.Role != NotHosted:
			np.Replica, np.Dir, np.Offline = prev.Replica, prev.Dir, prev.Offline
		default:
			if o, ok := take(pre, mt, mp); ok {
				np.Dir, np.Replica, np.Offline, err = o.dir, o.replica, o.offline, o.err
			} else {
				np.Dir, np.Replica, np.Offline, err = m.openReplica(mt, cfg, mp)
			}
			if err != nil {
				return nil, err
			}
			if np.Replica != nil {
				opened = append(opened, np.Replica)
			}
		}
		p.t.Partitions[i] = np
	}
	return p, nil
}

// finishTopic publishes a topic whose partitions took their roles, when
// anything about it changed, and reports in ch the partitions whose
// leadership here began or ended. A partition offline here is not led.
func (m *Manager) finishTopic(p *topicPlan, ch *Changes) {
	mt, old, t, cfg := p.mt, p.old, p.t, p.cfg
	changed := old == nil || old.Config != cfg || len(old.Partitions) != len(mt.Partitions)
	var resigned, elected []TopicPartition
	for i := range t.Partitions {
		np, prev := &t.Partitions[i], p.prev(i)
		if prev == nil || prev.Role != np.Role || prev.LeaderEpoch != np.LeaderEpoch || prev.Replica != np.Replica || prev.Repl != np.Repl {
			changed = true
		}
		led := prev != nil && prev.Role == Leader && prev.Offline == nil
		leads := np.Role == Leader && np.Offline == nil
		if led && !leads {
			resigned = append(resigned, TopicPartition{mt.Name, np.Index})
		}
		if leads && (!led || prev.LeaderEpoch != np.LeaderEpoch) {
			elected = append(elected, TopicPartition{mt.Name, np.Index})
		}
	}
	if !changed {
		return
	}
	m.publish(t)
	ch.Resigned = append(ch.Resigned, resigned...)
	ch.Elected = append(ch.Elected, elected...)
	if old != nil && old.Config != cfg {
		rc := replicaConfig(cfg, m.cfg)
		for i, tp := range t.Partitions {
			if tp.Replica != nil {
				rc.Replicated = replicated(mt.Partitions[i])
				tp.Replica.SetConfig(rc)
			}
		}
	}
	m.deleteUnassigned(p.unassigned)
}

// deleteUnassigned deletes the replicas this node no longer hosts, as
// Kafka's stopPartitions with delete does. The controller takes a replica
// out of a partition's replicas only once a reassignment's target replicas
// are all in the ISR, so the data is safe elsewhere; keeping the files
// would leave a stale copy that fills the disk and that a later move back
// to this node would reopen. stopRole has already stopped the partition's
// fetcher and leader state. An offline replica (no open log) is not here:
// its unreadable files are set aside as a stray at the next start.
func (m *Manager) deleteUnassigned(ps []*replica.Partition) {
	for _, p := range ps {
		m.logger.Info("this node is no longer a replica of the partition: deleting its log", "topic", p.Topic(), "partition", p.Index())
		if err := p.Delete(); err != nil {
			m.logger.Error("deleting a partition no longer assigned here", "topic", p.Topic(), "partition", p.Index(), "err", err)
		}
	}
}

// openReplica opens this node's replica of mp, creating its directory if
// it has none yet. A replica whose files cannot be read is returned as
// offline (not an error): its files are left as they are.
func (m *Manager) openReplica(mt *controller.Topic, cfg config.Topic, mp controller.Partition) (dir string, p *replica.Partition, offline, err error) {
	dir, cause, err := m.partitionDir(mt, mp.Index)
	if err != nil {
		return "", nil, nil, err
	}
	if cause != nil {
		m.logger.Error("partition offline: its files could not be read and are left as they are; clients get KAFKA_STORAGE_ERROR until it is fixed and the broker restarted",
			"topic", mt.Name, "partition", mp.Index, "err", cause)
		return dir, nil, fmt.Errorf("%w: %s partition %d is offline: %w", kerr.KafkaStorageError, mt.Name, mp.Index, cause), nil
	}
	rc := replicaConfig(cfg, m.cfg)
	rc.Replicated = replicated(mp)
	p, err = replica.Open(m.logFS, filepath.Join(dir, DirName(mt.Name, mp.Index)), mt.Name, mp.Index, mp.LeaderEpoch, rc, m.now, m.logger)
	if err != nil {
		return "", nil, nil, fmt.Errorf("topic %s partition %d: %w", mt.Name, mp.Index, err)
	}
	return dir, p, nil, nil
}

func (m *Manager) publish(t *Topic) {
	m.mu.Lock()
	if old := m.byName[t.Name]; old != nil && old.ID != t.ID {
		delete(m.byID, old.ID)
	}
	m.byName[t.Name] = t
	m.byID[t.ID] = t
	m.version.Add(1)
	m.mu.Unlock()
}

// remove takes a topic gone from the image offline and deletes its
// replicas' data. An offline replica's files are left alone: the next
// start sets them aside as a stray.
func (m *Manager) remove(t *Topic) {
	m.mu.Lock()
	delete(m.byName, t.Name)
	delete(m.byID, t.ID)
	m.version.Add(1)
	m.mu.Unlock()
	for _, p := range t.Partitions {
		if p.Repl != nil {
			p.Repl.close()
		}
		if p.Role == Follower && m.followers != nil {
			m.followers.Unfollow(t.Name, p.Index)
		}
		if p.Replica == nil {
			continue
		}
		if err := p.Replica.Delete(); err != nil {
			m.logger.Error("deleting partition", "topic", t.Name, "partition", p.Index, "err", err)
		}
	}
}

func (m *Manager) closeAll(ps []*replica.Partition, what string) {
	for _, p := range ps {
		if err := p.Close(); err != nil {
			m.logger.Error(what, "topic", p.Topic(), "partition", p.Index(), "err", err)
		}
	}
}
