package main

import (
	"errors"
	"fmt"
	"net"

	"github.com/sluice-io/sluice/config"
)

// explainBind adds to a failed bind the setting that chose the address,
// where its value came from and the flag that changes it: "address already
// in use" alone leaves a new user guessing which of the broker's two ports
// is taken (the admin port 9644 is also Redpanda's) and how to move it.
// Errors other than a failed listen come back unchanged.
func explainBind(err error, setting string, cfg *config.Broker) error {
	var oe *net.OpError
	if err == nil || !errors.As(err, &oe) || oe.Op != "listen" {
		return err
	}
	value, _ := cfg.Get(setting)
	from := cfg.Origin(setting)
	if from == "default" {
		from = "the default"
	}
	var how string
	switch setting {
	case "admin.listener":
		how = "--set admin.listener=HOST:PORT moves the HTTP admin endpoint (/metrics, /healthz), " +
			"--set admin.listener= (empty) turns it off; with make: make run ARGS='--set admin.listener=127.0.0.1:9645'"
	default:
		how = "--set listeners=PLAINTEXT://HOST:PORT moves the Kafka listener (and advertised.listeners what clients are told); " +
			"with make: make run ARGS='--set listeners=PLAINTEXT://127.0.0.1:9093'"
	}
	return fmt.Errorf("%w; the address is %s=%s (from %s): %s", err, setting, value, from, how)
}
