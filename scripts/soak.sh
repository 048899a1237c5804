#!/bin/sh
# Long soak of the smsbridge daemon: a steady SMTP + HTTP stream while the
# daemon is SIGKILLed and restarted every 1.5 s, then checks that nothing
# acknowledged was lost and that the SQLite store is intact.
#
#   scripts/soak.sh            # 10 minutes, with the race detector
#   scripts/soak.sh 2m         # any time.ParseDuration value
#   RACE= scripts/soak.sh 1h   # without -race (faster restarts)
set -eu

cd "$(dirname "$0")/.."
duration=${1:-10m}
race=${RACE--race}

# The test's own timeout must outlast the soak plus restarts and delivery.
SOAK_DURATION=$duration exec go test $race -count=1 -timeout 0 -run '^TestSoak$' -v ./cmd/smsbridge
