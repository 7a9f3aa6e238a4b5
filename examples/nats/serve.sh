#!/usr/bin/env bash
# Start nats-server with the least-privilege account of odeness.conf (next to this script), refusing
# passwords that are unset, empty or short: nats-server itself takes ODENESS_COORDINATOR_PASSWORD=""
# as a valid, empty password (measured with nats-server 2.9.10), which would let anyone in as that user.
#
#   ODENESS_COORDINATOR_PASSWORD=… ODENESS_WORKER_PASSWORD=… examples/nats/serve.sh -js -sd /var/lib/nats
#
# Every argument goes to nats-server.
set -euo pipefail
MIN=12
for v in ODENESS_COORDINATOR_PASSWORD ODENESS_WORKER_PASSWORD; do
  value="${!v:-}"
  if [ "${#value}" -lt "$MIN" ]; then
    echo "serve.sh: $v must be set to a password of at least $MIN characters (got ${#value}); refusing to start nats-server" >&2
    exit 2
  fi
done
exec nats-server -c "$(dirname "$0")/odeness.conf" "$@"
