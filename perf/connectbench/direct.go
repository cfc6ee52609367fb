package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/connect/convert"
	"github.com/sluice-io/sluice/perf/connectbench/gen"
)

// directResult is what the direct subcommand prints: progress samples and
// the CPU seconds of this process and the broker from the first record
// produced to the last consumed.
type directResult struct {
	Samples   []sample `json:"samples"`
	ClientCPU float64  `json:"client_cpu_s"`
	BrokerCPU float64  `json:"broker_cpu_s"`
	Wall      float64  `json:"wall_s"`
	Err       string   `json:"error,omitempty"`
}

// runDirect is `connectbench direct`: the franz-go baseline as a process
// of its own. A group consumer joins first; once it has the topic's
// partitions a producer with the worker's producer settings (acks=all,
// linger 5 ms) writes the records the generator plugin makes (same keys,
// values of the same size; JSON values as one pre-encoded text, so the
// baseline pays no encoding), and the consumer reads them.
func runDirect(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("direct", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bootstrap := fs.String("bootstrap", "", "broker address")
	topic := fs.String("topic", "", "topic (it must exist)")
	records := fs.Int64("records", 100000, "records to move")
	size := fs.Int("bytes", 100, "value size")
	valueType := fs.String("value-type", "bytes", "bytes or json")
	brokerPid := fs.Int("broker-pid", 0, "pid of the broker, whose CPU time is reported")
	interval := fs.Duration("interval", 100*time.Millisecond, "sampling interval")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	res := direct(*bootstrap, *topic, *records, *size, *valueType, *brokerPid, *interval, *timeout)
	if err := json.NewEncoder(stdout).Encode(res); err != nil {
		return 1
	}
	return 0
}

func direct(bootstrap, topic string, total int64, size int, valueType string, brokerPid int, interval, timeout time.Duration) directResult {
	var res directResult
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	value, err := directValue(topic, size, valueType)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	assigned := make(chan struct{})
	var assignedOnce atomic.Bool
	consumer, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.ConsumerGroup("direct-"+topic), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
			if assignedOnce.CompareAndSwap(false, true) {
				close(assigned)
			}
		}))
	if err != nil {
		res.Err = err.Error()
		return res
	}
	defer consumer.Close()
	producer, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		res.Err = err.Error()
		return res
	}
	defer producer.Close()

	var consumed, acked atomic.Int64
	consumerDone := make(chan error, 1)
	go func() {
		for consumed.Load() < total {
			fs := consumer.PollFetches(ctx)
			if ctx.Err() != nil {
				consumerDone <- ctx.Err()
				return
			}
			// Fetch errors are transient here; the client retries them.
			consumed.Add(int64(fs.NumRecords()))
		}
		consumerDone <- nil
	}()
	select {
	case <-assigned:
	case <-ctx.Done():
		res.Err = "the consumer got no partitions: " + ctx.Err().Error()
		return res
	}

	startCPU, startBroker := selfCPU(), brokerCPU(brokerPid)
	start := time.Now()
	var produceErr atomic.Value
	go func() {
		for seq := int64(0); seq < total && ctx.Err() == nil; seq++ {
			r := &kgo.Record{Topic: topic, Key: []byte(gen.Key(seq)), Value: value}
			producer.Produce(ctx, r, func(_ *kgo.Record, err error) {
				if err != nil {
					produceErr.CompareAndSwap(nil, err)
					return
				}
				acked.Add(1)
			})
		}
	}()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	res.Samples = append(res.Samples, sample{At: time.Now()})
	for {
		select {
		case err := <-consumerDone:
			res.Samples = append(res.Samples, sample{At: time.Now(), Src: acked.Load(), Sink: consumed.Load()})
			res.Wall = time.Since(start).Seconds()
			res.ClientCPU, res.BrokerCPU = selfCPU()-startCPU, brokerCPU(brokerPid)-startBroker
			if err != nil {
				res.Err = fmt.Sprintf("consumed %d of %d: %v", consumed.Load(), total, err)
			}
			if e, ok := produceErr.Load().(error); ok {
				res.Err = "producing: " + e.Error()
			}
			return res
		case <-tick.C:
			res.Samples = append(res.Samples, sample{At: time.Now(), Src: acked.Load(), Sink: consumed.Load()})
		}
	}
}

// directValue is the value every direct record carries: value.type=bytes
// is the generator's payload, json the text JsonConverter writes for a
// generated value with a 7-digit seq (later records differ from it only in
// their digits).
func directValue(topic string, size int, valueType string) ([]byte, error) {
	switch valueType {
	case "bytes":
		return gen.Payload(size), nil
	case "json":
		c, err := convert.New(jsonConverter, map[string]string{"schemas.enable": "false"}, false)
		if err != nil {
			return nil, err
		}
		return c.FromConnect(topic, nil, gen.JSONValue(1234567, gen.Filler(size)))
	}
	return nil, fmt.Errorf("value type %q: want bytes or json", valueType)
}

// selfCPU is this process's user+system CPU seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func brokerCPU(pid int) float64 {
	if pid <= 0 {
		return 0
	}
	c, _ := cpuOf(pid)
	return c
}
