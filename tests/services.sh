#!/usr/bin/env bash
# Start what the test suite talks to, if it is not already running: PostgreSQL on 127.0.0.1:5432;
# and the CJK font the report charts are drawn with (tests/fonts.sh).
set -euo pipefail

pg_ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

if ! pg_ready; then
    if command -v pg_ctlcluster >/dev/null 2>&1; then
        echo "services: starting PostgreSQL" >&2
        for version in $(ls /etc/postgresql); do
            pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
        done
    fi
    for _ in $(seq 1 30); do pg_ready && break; sleep 1; done
fi
pg_ready || { echo "services: PostgreSQL is not reachable on 127.0.0.1:5432; the suite needs it" >&2; exit 1; }

bash "$(dirname "$0")/fonts.sh"
# The desk's browser test (tests/e2e/test_desk_browser.py): Debian's Chromium, driven by Playwright
# (pip's playwright package; no browser is downloaded); the CJK font (charts and pages) from fonts.sh.
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if ((${#need[@]})); then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        echo "services: installing ${need[*]}" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    else
        echo "services: please install ${need[*]} (apt-get install ${need[*]}); the browser test needs them" >&2
        exit 1
    fi
fi
