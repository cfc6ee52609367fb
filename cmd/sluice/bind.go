package main

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/sluice-io/sluice/config"
)

// explainBind adds to a failed bind the setting that chose the address,
// where its value came from and the flag that changes it: "address already
// in use" alone leaves a new user guessing which of the broker's two ports
// is taken (the admin port 9644 is also Redpanda's) and how to move it.
// Errors other than a failed listen come back unchanged.
//
// broker.New binds both addresses. The admin endpoint's error wraps the
// *net.OpError; the Kafka listener's does not (on purpose, so it is never
// mistaken for the admin one) and names "listeners=" in its text instead.
func explainBind(err error, cfg *config.Broker) error {
	if err == nil {
		return nil
	}
	var oe *net.OpError
	switch {
	case errors.As(err, &oe) && oe.Op == "listen":
		return explainSetting(err, "admin.listener", cfg)
	case strings.Contains(err.Error(), "listen") && strings.Contains(err.Error(), "listeners="):
		return explainSetting(err, "listeners", cfg)
	}
	return err
}

// explainListen is explainBind for Broker.Listen, which binds only the
// Kafka listener.
func explainListen(err error, cfg *config.Broker) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "listen" {
		return explainSetting(err, "listeners", cfg)
	}
	return err
}

func explainSetting(err error, setting string, cfg *config.Broker) error {
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
		how = "--set listeners=PLAINTEXT://HOST:PORT moves the Kafka listener (advertised.listeners sets the address clients are told); " +
			"with make: make run ARGS='--set listeners=PLAINTEXT://127.0.0.1:9093'"
	}
	return fmt.Errorf("%w; the address is %s=%s (from %s): %s", err, setting, value, from, how)
}
