// Command kfakepeer runs franz-go's in-memory fake Kafka cluster (kfake)
// with one broker on 127.0.0.1 until SIGINT or SIGTERM, so the benchmark
// harness can measure it as a process of its own, like the real brokers.
//
// kfake keeps every record in memory. The harness deletes each run's topic
// and then sends SIGUSR1, on which the peer returns freed memory to the
// OS; otherwise the Go heap of one run's records would stay resident and
// pile up over the hundreds of runs of `make bench`.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

// memoryLimit is a guard, not a tuning knob: far above what one run holds,
// it only makes the collector work harder before the machine runs out.
const memoryLimit = 12 << 30

func main() {
	port := flag.Int("port", 0, "port on 127.0.0.1 (0 picks one)")
	flag.Parse()
	debug.SetMemoryLimit(memoryLimit)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGUSR1)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(*port), kfake.AllowAutoTopicCreation())
	if err != nil {
		fmt.Fprintf(os.Stderr, "kfakepeer: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("kfake listening on %v\n", c.ListenAddrs())
	for s := range sig {
		if s == syscall.SIGUSR1 {
			debug.FreeOSMemory()
			continue
		}
		break
	}
	c.Close()
}
