#!/bin/sh
# Start nats-server with the least-privilege account of odeness.conf (beside this script), after checking
# that both passwords are set: nats-server would accept an empty one, letting anyone in as that user.
#   ODENESS_COORDINATOR_PASSWORD=… ODENESS_WORKER_PASSWORD=… examples/nats/start-server.sh -js -sd /var/lib/nats
set -eu
for var in ODENESS_COORDINATOR_PASSWORD ODENESS_WORKER_PASSWORD; do
  eval "value=\${$var-}"
  if [ "${#value}" -lt 12 ]; then
    echo "start-server.sh: $var is empty or shorter than 12 characters; set a strong password" >&2
    exit 2
  fi
done
if [ "$ODENESS_COORDINATOR_PASSWORD" = "$ODENESS_WORKER_PASSWORD" ]; then
  echo "start-server.sh: the coordinator and worker passwords must differ" >&2
  exit 2
fi
exec "${NATS_SERVER:-nats-server}" -c "$(dirname "$0")/odeness.conf" "$@"
