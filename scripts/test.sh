#!/usr/bin/env bash
# Runs every test: starts the local servers (Azurite, moto), runs the workspace tests, stops them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/test-services.sh start
trap 'bash scripts/test-services.sh stop' EXIT
export STACKUP_TEST_AZURITE_URL="${STACKUP_TEST_AZURITE_URL:-http://127.0.0.1:10000/devstoreaccount1}"
export STACKUP_TEST_S3_ENDPOINT="${STACKUP_TEST_S3_ENDPOINT:-http://127.0.0.1:5055}"
cargo test --workspace --all-features --all-targets
# Doc examples too (`--all-targets` leaves them out).
cargo test --workspace --all-features --doc
