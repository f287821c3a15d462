#!/usr/bin/env bash
# Installs (once, into .services/) and starts the real local servers the tests use, on 127.0.0.1:
#   - Azurite 3.35.0 (blob)      http://127.0.0.1:10000/devstoreaccount1   (STACKUP_TEST_AZURITE_URL)
#   - moto[server] (S3 API)      http://127.0.0.1:5055                     (STACKUP_TEST_S3_ENDPOINT)
# Usage: scripts/test-services.sh start|stop|status
# Needs only node/npm and python3 (with venv/pip) on the machine; downloads from npm and PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
SVC=.services
AZURITE_VERSION=3.35.0
MOTO_VERSION=5.2.5
mkdir -p "$SVC/logs"

install() {
  if [ ! -x "$SVC/node_modules/.bin/azurite-blob" ]; then
    echo "installing azurite@$AZURITE_VERSION (npm)"
    npm install --prefix "$SVC" --no-audit --no-fund --ignore-scripts --loglevel=error "azurite@$AZURITE_VERSION" >/dev/null
  fi
  if [ ! -x "$SVC/venv/bin/moto_server" ]; then
    echo "installing moto[server]==$MOTO_VERSION (PyPI)"
    python3 -m venv "$SVC/venv"
    "$SVC/venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
  fi
}

wait_port() { # host port name
  for _ in $(seq 1 120); do
    if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then echo "$3 is up on $1:$2"; return 0; fi
    sleep 0.5
  done
  echo "$3 did not start on $1:$2; see $SVC/logs/" >&2
  return 1
}

start() {
  install
  stop >/dev/null 2>&1 || true
  nohup "$SVC/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort 10000 \
    --inMemoryPersistence --disableTelemetry --loose --skipApiVersionCheck \
    >"$SVC/logs/azurite.log" 2>&1 &
  echo $! >"$SVC/azurite.pid"
  nohup "$SVC/venv/bin/moto_server" -H 127.0.0.1 -p 5055 >"$SVC/logs/moto.log" 2>&1 &
  echo $! >"$SVC/moto.pid"
  wait_port 127.0.0.1 10000 azurite
  wait_port 127.0.0.1 5055 moto
}

stop() {
  for name in azurite moto; do
    if [ -f "$SVC/$name.pid" ]; then
      kill "$(cat "$SVC/$name.pid")" 2>/dev/null || true
      rm -f "$SVC/$name.pid"
    fi
  done
}

status() {
  for name in azurite moto; do
    if [ -f "$SVC/$name.pid" ] && kill -0 "$(cat "$SVC/$name.pid")" 2>/dev/null; then echo "$name running"; else echo "$name stopped"; fi
  done
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  install) install ;;
  *) echo "usage: $0 start|stop|status|install" >&2; exit 2 ;;
esac
