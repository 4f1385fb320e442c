#!/usr/bin/env bash
# Creates the five fixture segments on the node at $1 (default http://127.0.0.1:8080).
set -euo pipefail
url=${1:-http://127.0.0.1:8080}
here=$(cd "$(dirname "$0")" && pwd)
python3 - "$url" "$here/../../tests/fixtures/segments.json" <<'PY'
import json, sys, urllib.request
url, path = sys.argv[1], sys.argv[2]
for segment in json.load(open(path)):
    request = urllib.request.Request(url + "/api/v1/segments", data=json.dumps(segment).encode(),
                                     headers={"Content-Type": "application/json"})
    print(urllib.request.urlopen(request).read().decode())
PY
