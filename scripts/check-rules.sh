#!/usr/bin/env bash
# Checks the Prometheus alert rules in contrib/prometheus with promtool:
# their syntax and expressions (check rules) and their unit tests (test
# rules); then every query of the Grafana dashboard and of the rules with
# promtool's PromQL parser (contrib's TestQueriesParse). promtool is built
# from its Go module once and kept in $(go env GOPATH)/bin/promtool-<version>/
# for the next run.
set -euo pipefail
cd "$(dirname "$0")/.."

version=${PROMTOOL_VERSION:-v0.316.0}
dir="$(go env GOPATH)/bin/promtool-$version"
if [ ! -x "$dir/promtool" ]; then
  echo "building promtool $version (once; a few minutes)"
  GOBIN="$dir" go install "github.com/prometheus/prometheus/cmd/promtool@$version"
fi
echo "promtool $version (module github.com/prometheus/prometheus)"
"$dir/promtool" check rules contrib/prometheus/smsbridge.rules.yml
"$dir/promtool" test rules contrib/prometheus/smsbridge.rules.test.yml
PROMTOOL="$dir/promtool" go test -count=1 -run '^TestQueriesParse$' ./contrib/
