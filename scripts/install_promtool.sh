#!/usr/bin/env bash
# Installs promtool, Prometheus' checker of configurations and alert rules, into ./.tools/bin: the binary
# out of Debian's `prometheus` package, unpacked (apt-get download + dpkg -x), not installed — no service
# is started, no user is made, nothing outside this folder changes. `make promtool` runs it; `make lint`
# uses ./.tools/bin/promtool (or a promtool on PATH). Needs Debian's apt (apt-get update first when its
# package lists are empty).
set -euo pipefail
cd "$(dirname "$0")/.."

dest=.tools/bin/promtool
if [ -x "$dest" ]; then
    echo "promtool: $dest ($("$dest" --version 2>&1 | head -n 1))"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg >/dev/null 2>&1; then
    echo "install_promtool: needs Debian's apt-get and dpkg; or put a promtool (Prometheus 2.x) on PATH" >&2
    exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ! (cd "$work" && apt-get download -q prometheus); then
    echo "install_promtool: refreshing apt's package lists (apt-get update) and trying again" >&2
    apt-get update -q
    (cd "$work" && apt-get download -q prometheus)
fi
dpkg -x "$work"/prometheus_*.deb "$work/root"
mkdir -p "$(dirname "$dest")"
cp "$work/root/usr/bin/promtool" "$dest"
chmod 0755 "$dest"
echo "promtool: $dest ($("$dest" --version 2>&1 | head -n 1))"
