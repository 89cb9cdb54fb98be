#!/usr/bin/env bash
# Runs agency.py against a fresh `chiso up`: a virtual environment with the
# pinned packages, Python stubs generated from proto/ at run time, a
# throw-away data directory and an ephemeral port.
#   examples/python/run.sh [path/to/chiso]     (default: target/debug/chiso)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
chiso=${1:-$root/target/debug/chiso}
venv=${CHISO_EXAMPLE_VENV:-$here/.venv}

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"

work=$(mktemp -d)
up_pid=
cleanup() {
  [ -n "$up_pid" ] && kill "$up_pid" 2>/dev/null && wait "$up_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# google/type comes from googleapis-common-protos; generate chiso's own packages.
mkdir -p "$work/stubs"
(cd "$root/proto" && "$venv/bin/python" -m grpc_tools.protoc -I . \
  --python_out="$work/stubs" --grpc_python_out="$work/stubs" chiso/*/v1/*.proto)

"$chiso" up --listen 127.0.0.1:0 --data-dir "$work/data" 2>"$work/up.log" >/dev/null &
up_pid=$!
url=
for _ in $(seq 1 600); do
  url=$(sed -n 's/^chiso is up on http:\/\/\([^ ]*\).*/\1/p' "$work/up.log" | head -n 1)
  [ -n "$url" ] && break
  kill -0 "$up_pid" 2>/dev/null || { cat "$work/up.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { echo "chiso up did not announce its address" >&2; cat "$work/up.log" >&2; exit 1; }

token=$("$chiso" token issue --data-dir "$work/data" --role submitter --role reader \
  --scope 15499 --subject example-agency-15499)
PYTHONPATH="$work/stubs" "$venv/bin/python" "$here/agency.py" \
  --server "$url" --token "$token" --unit 15499 --year 2023
