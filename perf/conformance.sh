#!/usr/bin/env bash
# Placeholder: the conformance run (real Kafka tools against bin/sluice) is
# not written yet. Fails so that `make conformance` is never mistaken for a pass.
echo "perf/conformance.sh: not yet" >&2
exit 1
