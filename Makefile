# Sluice build and test entry points (GNU make).
#
#   make run       build and start a single-node broker on 127.0.0.1:9092 (data in ./data)
#   make test      go vet and the race-enabled tests in -short mode (~4 min on 2 cores)
#   make test-all  what CI runs: every test in full, then a fuzz run of each target
#   make help      list every target

GO       ?= go
BIN      := bin/sluice
FUZZTIME ?= 10s
# Per test binary; itest runs every process test in one binary, about
# 15 minutes in full on 2 cores with the connectors' tests.
TEST_TIMEOUT ?= 45m
# Build tags of the test targets (unit, unit-all, fuzz): `invariants` turns
# on the assertions of internal/invariants (logStart <= HW <= LEO, offsets
# contiguous, ...), which panic on a violation. The broker binary and the
# benchmarks are built without them. TEST_TAGS= runs the tests without.
TEST_TAGS ?= invariants
# Extra arguments for `make run`, e.g. make run ARGS='--set num.partitions=3'
ARGS     ?=

# github.com/pawelgaczynski/giouring reaches into the syscall package with
# //go:linkname (syscall.mmap, syscall.munmap). Since Go 1.23 the linker
# refuses such references unless link-name checking is turned off, so every
# build and test - including vet and fuzz runs - gets this flag. Kept in
# GOFLAGS so that plain `go` commands run by these recipes inherit it.
export GOFLAGS := $(strip $(GOFLAGS) -ldflags=-checklinkname=0)

# go.mod's go line is the oldest Go that builds Sluice. Checked before any
# target but help and clean, so a missing or old Go (Debian 12 ships 1.19)
# fails with what to install rather than with errors from deep in a build.
GO_NEEDED := $(shell sed -n 's/^go \([0-9.]*\)$$/\1/p' go.mod)
ifeq ($(filter help clean,$(MAKECMDGOALS)),)
GO_HAVE := $(shell $(GO) env GOVERSION 2>/dev/null | sed 's/^go//')
ifeq ($(GO_HAVE),)
$(error no Go found ('$(GO)' is not on PATH): Sluice needs Go $(GO_NEEDED) or later; README.md, "Installing Go", says how to get it)
endif
ifneq ($(firstword $(shell printf '%s\n' '$(GO_NEEDED)' '$(GO_HAVE)' | sort -V)),$(GO_NEEDED))
$(error '$(GO) version' says $(GO_HAVE), but Sluice needs Go $(GO_NEEDED) or later (go.mod); README.md, "Installing Go", says how to get it)
endif
endif

.DEFAULT_GOAL := build
.PHONY: build run run-cluster run-quorum test test-all unit unit-all sim fuzz bench bench-quick bench-micro conformance conformance-cluster fmt fmt-check vet lint docs clean help

help: ## list targets
	@awk -F ':.*## ' '/^[a-z-]+:.*## / { printf "%-12s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

# Connector plugins (one command per directory under connectors/) go to
# bin/plugins, the plugin.path a worker uses by default.
PLUGINS := $(patsubst connectors/%/main.go,%,$(wildcard connectors/*/main.go))

build: ## compile the broker to bin/sluice and the connector plugins to bin/plugins/
	@mkdir -p $(dir $(BIN)) bin/plugins
	$(GO) build -o $(BIN) ./cmd/sluice
	@for p in $(PLUGINS); do echo "$(GO) build -o bin/plugins/$$p ./connectors/$$p"; $(GO) build -o bin/plugins/$$p ./connectors/$$p || exit 1; done

run: build ## start a single-node broker with built-in defaults (127.0.0.1:9092, ./data)
	./$(BIN) broker $(ARGS)

# Node 1 is broker and controller, nodes 2 and 3 brokers, each from its
# deploy/cluster/nodeN.properties; scripts/run-cluster.sh says more.
run-cluster: build ## start a three-node local cluster (127.0.0.1:9092/9094/9095, ./data/node1..3); Ctrl-C stops it
	./scripts/run-cluster.sh $(BIN)

run-quorum: build ## start three nodes that are brokers and controller voters (127.0.0.1:9092/9094/9095, ./data/quorum/node1..3); Ctrl-C stops them
	./scripts/run-cluster.sh $(BIN) deploy/quorum

# `make test` is the quick gate before a commit; `make test-all` is the
# whole suite, what CI runs. -short changes how much each test does, never
# what it checks: the integration tests run each on one network engine
# instead of both (chosen per test, so both engines are exercised), the
# randomized tests take fewer seeds, a few stress tests smaller loads. Fuzz
# targets' seed corpora run in both as ordinary tests.
test: vet unit ## quick gate (~4 min on 2 cores): vet, race-enabled tests with -short

test-all: vet unit-all fuzz ## what CI runs: vet, every race-enabled test in full, 10 s of fuzzing per target

vet: ## go vet every package, with and without the invariants tag
	$(GO) vet ./...
	$(GO) vet -tags '$(TEST_TAGS)' ./...

# golangci-lint, pinned, built once into bin/tools (a minute or two on a
# fresh machine); .golangci.yml says what it checks. CI fails on findings.
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT := bin/tools/golangci-lint-$(GOLANGCI_LINT_VERSION)

$(GOLANGCI_LINT):
	@mkdir -p bin/tools
	GOBIN=$(CURDIR)/bin/tools $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv bin/tools/golangci-lint $@

lint: $(GOLANGCI_LINT) ## golangci-lint: the standard linters plus staticcheck, unused and revive (.golangci.yml)
	$(GOLANGCI_LINT) run ./...

unit: ## race-enabled tests of every package, -short, with invariant assertions on
	$(GO) test -race -short -count=1 -timeout $(TEST_TIMEOUT) -tags '$(TEST_TAGS)' ./...

unit-all: ## race-enabled tests of every package, in full, with invariant assertions on
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) -tags '$(TEST_TAGS)' ./...

# The seeded simulators at length (make test runs a few dozen to a few
# hundred seeds of each): the controller quorum's CASPaxos register, its
# takeover and lease logic (ctrlquorum), its metadata log (metalog) and
# the whole quorum with brokers (clustersim), SEEDS seeds each, and the ISR
# replication simulator (its -long run). A failing seed prints the line
# that replays it.
SEEDS ?= 5000
sim: ## run SEEDS (default 5000) seeds of the CASPaxos register, controller-takeover and metadata-log simulators, and the ISR simulator's long run
	$(GO) test -count=1 -timeout 60m -tags '$(TEST_TAGS)' -run 'TestSim$$' ./caspaxos -seeds=$(SEEDS)
	$(GO) test -count=1 -timeout 60m -tags '$(TEST_TAGS)' -run 'TestSim$$' ./ctrlquorum -seeds=$(SEEDS)
	$(GO) test -count=1 -timeout 60m -tags '$(TEST_TAGS)' -run 'TestSim$$' ./metalog -seeds=$(SEEDS)
	$(GO) test -count=1 -timeout 60m -tags '$(TEST_TAGS)' -run 'TestSim$$' ./clustersim -seeds=$(SEEDS)
	$(GO) test -count=1 -timeout 60m -tags '$(TEST_TAGS)' -run 'TestSim' ./isr -long

# Runs every Fuzz* target for FUZZTIME each; see scripts/fuzz.sh.
fuzz: ## run each Fuzz* target for FUZZTIME (default 10s)
	GO=$(GO) FUZZTIME=$(FUZZTIME) GOFLAGS='$(GOFLAGS) -tags=$(TEST_TAGS)' ./scripts/fuzz.sh

# Side by side with kfake and NATS JetStream, report in perf/results/;
# perf/bench.sh says what it installs. BENCH_ARGS go to the harness.
bench: ## Sluice vs kfake and JetStream, every workload of issue 5, the connectors and the controller quorum (< 45 min); reports in perf/results/
	GO=$(GO) ./perf/bench.sh full $(BENCH_ARGS)

bench-quick: ## a few workloads of `make bench`, short runs (< 5 min); report in perf/results/quick/
	GO=$(GO) ./perf/bench.sh quick $(BENCH_ARGS)

bench-micro: ## micro-benchmarks of every package plus produce/consume/fetch throughput of a whole broker (perf/)
	$(GO) test -run XXX -bench . -benchmem ./...

# franz-go's kgo integration suite against one broker, then against three
# broker processes with RF=3 topics (~10 min on 2 cores); see
# itest/conformance/run.sh.
conformance: build ## franz-go's client test suite against one broker, then a three-broker RF=3 cluster
	./itest/conformance/run.sh single cluster

conformance-cluster: build ## the three-broker RF=3 half of make conformance
	./itest/conformance/run.sh cluster

fmt: ## gofmt every Go file in place
	gofmt -w $$($(GO) list -f '{{.Dir}}' ./...)

fmt-check: ## fail if any Go file is not gofmt-clean
	@out=$$(gofmt -l $$($(GO) list -f '{{.Dir}}' ./...)); \
	if [ -n "$$out" ]; then echo "not gofmt-clean:"; echo "$$out"; exit 1; fi

docs: ## regenerate the reference part of docs/configuration.md
	SLUICE_UPDATE_DOCS=1 $(GO) test -count=1 -run TestConfigurationDocUpToDate ./config

clean: ## remove build output (keeps ./data)
	rm -rf bin
