#!/usr/bin/env bash
# Print random keys for the bundled object store, ready to append to .env:
#   bash docker/new-keys.sh >> .env
# Access key ids are 20 upper-case hex characters, secrets 40 hex characters. Each role gets a
# write pair (kept secret) and a read pair (published on chain in the bucket commitment).
set -euo pipefail

hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }
id() { hex 10 | tr 'a-f' 'A-F'; }

echo "# --- keys made by docker/new-keys.sh on $(date -u +%Y-%m-%d) ---"
echo "STORE_ADMIN_ACCESS_KEY_ID=$(id)"
echo "STORE_ADMIN_SECRET_ACCESS_KEY=$(hex 20)"
for role in MINER VALIDATOR; do
    for kind in WRITE READ; do
        echo "${role}_${kind}_ACCESS_KEY_ID=$(id)"
        echo "${role}_${kind}_SECRET_ACCESS_KEY=$(hex 20)"
    done
done
echo "GRAFANA_ADMIN_PASSWORD=$(hex 12)"
