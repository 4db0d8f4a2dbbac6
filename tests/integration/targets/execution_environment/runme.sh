#!/usr/bin/env bash
# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# What an execution environment build gets from this collection, checked on the built artifact (not the source
# tree): `ansible-builder introspect` must list exactly msal and requests, and no system packages; and
# `ansible-builder create` must turn docs/execution-environment/ into a build context.
set -euo pipefail

# the collection under test: the ansible_collections tree ansible-test put on ANSIBLE_COLLECTIONS_PATH
collection=""
IFS=: read -r -a roots <<<"${ANSIBLE_COLLECTIONS_PATH:-}"
for root in "${roots[@]}"; do
    if [ -f "$root/ansible_collections/entra/autopilot/galaxy.yml" ]; then
        collection="$root/ansible_collections/entra/autopilot"
        break
    fi
done
[ -n "$collection" ] || { echo "entra.autopilot not found on ANSIBLE_COLLECTIONS_PATH=${ANSIBLE_COLLECTIONS_PATH:-}" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

ansible-galaxy collection build "$collection" --output-path "$work/dist"
# --force: ansible-galaxy would otherwise see the copy under test on ANSIBLE_COLLECTIONS_PATH and install nothing
ansible-galaxy collection install --force "$work"/dist/entra-autopilot-*.tar.gz -p "$work/installed"
[ -f "$work/installed/ansible_collections/entra/autopilot/MANIFEST.json" ] || { echo "the tarball was not installed" >&2; exit 1; }

python -m ansible_builder introspect --sanitize "$work/installed" --write-pip "$work/pip.txt" --write-bindep "$work/bindep.txt"
# one requirement per line, comments stripped: exactly the collection's two runtime dependencies
names=$(sed -e 's/#.*//' -e 's/[<>=!~ ].*//' "$work/pip.txt" | grep -v '^$' | tr '[:upper:]' '[:lower:]' | sort | tr '\n' ' ')
if [ "$names" != "msal requests " ]; then
    echo "ansible-builder introspect found Python requirements '$names', expected exactly 'msal requests'" >&2
    cat "$work/pip.txt" >&2
    exit 1
fi
if [ -s "$work/bindep.txt" ] && grep -qv '^\s*\(#.*\)\?$' "$work/bindep.txt"; then
    echo "ansible-builder introspect found system requirements, expected none:" >&2
    cat "$work/bindep.txt" >&2
    exit 1
fi

python -m ansible_builder create -f "$collection/docs/execution-environment/execution-environment.yml" \
    -c "$work/context" --output-filename Containerfile
for file in Containerfile _build/requirements.yml _build/scripts/assemble; do
    [ -f "$work/context/$file" ] || { echo "ansible-builder create did not write $file" >&2; exit 1; }
done
grep -q 'entra.autopilot' "$work/context/_build/requirements.yml"
echo "execution environment: introspect lists exactly msal and requests; build context created"
