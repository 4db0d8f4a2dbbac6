#!/usr/bin/env bash
# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# The harness behind the Makefile: `run.sh STEP...` with STEP one of
#   demo sanity units integration lint test emulator clean
# Settings (environment): PYTHON (interpreter), ANSIBLE_CORE (pip specifier such as 2.19.* or ==2.21.5),
# WORKDIR (default <repo>/.work), ANSIBLE_TEST_ARGS (extra arguments for ansible-test, e.g. a target name).
# Works without Docker; README.md ("Testing") says what it does.

set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HARNESS="$REPO/tests/harness"
WORK=${WORKDIR:-$REPO/.work}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
COPY="$WORK/ansible_collections/entra/autopilot"
LOGS="$WORK/logs"
EMULATOR_DIR="$WORK/emulator"
EMULATOR_PID=""
# what the harness installs besides ansible-core; a change here rebuilds the venvs
HARNESS_VERSION=1

say() { printf '==> %s\n' "$*"; }
fail() {
    printf '==> FAILED: %s\n' "$*" >&2
    exit 1
}

# ---------------------------------------------------------------- Python and ansible-core

# prints "MAJOR.MINOR EXECUTABLE" for an interpreter that can build virtual environments with pip
probe_python() {
    "$1" -c 'import sys, venv, ensurepip; print("%d.%d %s" % (sys.version_info[0], sys.version_info[1], sys.executable))' 2>/dev/null
}

pyenv_pythons() {
    local root
    root=$(pyenv root 2>/dev/null || true)
    [ -n "$root" ] || root="$HOME/.pyenv"
    local candidate
    for candidate in "$root"/versions/*/bin/python3; do
        [ -x "$candidate" ] && printf '%s\n' "$candidate"
    done
    return 0
}

# newest Python >= 3.11 found as python3.14 .. python3.11 on PATH, in pyenv's versions, or as python3
select_python() {
    local probe
    if [ -n "${PYTHON:-}" ]; then
        probe=$(probe_python "$PYTHON") || fail "PYTHON=$PYTHON does not run, or lacks the venv/ensurepip modules"
    else
        local candidate best="" best_key=0 version key
        local -a candidates=(python3.14 python3.13 python3.12 python3.11)
        mapfile -t -O "${#candidates[@]}" candidates < <(pyenv_pythons)
        candidates+=(python3)
        for candidate in "${candidates[@]}"; do
            probe=$(probe_python "$candidate") || continue
            version=${probe%% *}
            key=$((${version%%.*} * 100 + ${version#*.}))
            if [ "$key" -ge 311 ] && [ "$key" -gt "$best_key" ]; then
                best=$probe
                best_key=$key
            fi
        done
        [ -n "$best" ] || fail "no Python >= 3.11 with venv and ensurepip found (tried python3.14..3.11, pyenv versions, python3); set PYTHON=/path/to/python3.x"
        probe=$best
    fi
    PY_VERSION=${probe%% *}
    PY_BIN=$(readlink -f "${probe#* }")
}

# ANSIBLE_CORE=2.19.* / 2.19 / ==2.19.14 / >=2.18,<2.20 -> a pip requirement
core_requirement() {
    local spec=${ANSIBLE_CORE:-}
    if [ -z "$spec" ]; then
        printf 'ansible-core'
    elif [[ "$spec" =~ ^[0-9]+\.[0-9]+$ ]]; then
        printf 'ansible-core==%s.*' "$spec"
    elif [[ "$spec" =~ ^[0-9] ]]; then
        printf 'ansible-core==%s' "$spec"
    else
        printf 'ansible-core%s' "$spec"
    fi
}

# pip install into $1 unless the stamp shows the same inputs were installed before
ensure_venv() {
    local venv=$1 python=$2
    shift 2
    local stamp_text stamp="$venv/.harness-stamp"
    stamp_text=$(printf '%s\n' "$HARNESS_VERSION" "$python" "$@"; cat "$REPO/requirements.txt")
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$stamp_text" ] && [ -x "$venv/bin/python" ]; then
        return 0
    fi
    rm -rf "$venv"
    say "creating $venv ($*)"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install -qq --disable-pip-version-check "$@" || fail "pip install $* into $venv"
    printf '%s\n' "$stamp_text" >"$stamp"
}

setup_core() {
    select_python
    local requirement slug
    requirement=$(core_requirement)
    slug=$(printf '%s' "$requirement" | tr -c 'A-Za-z0-9.' '_')
    VENV="$WORK/venv/py$PY_VERSION-$slug"
    ensure_venv "$VENV" "$PY_BIN" "$requirement" -r "$REPO/requirements.txt"
    CORE_VERSION=$("$VENV/bin/python" -c 'import ansible.release; print(ansible.release.__version__)')
    local how="newest for this Python"
    [ -z "${ANSIBLE_CORE:-}" ] || how="ANSIBLE_CORE=$ANSIBLE_CORE"
    local which="newest found"
    [ -z "${PYTHON:-}" ] || which="PYTHON=$PYTHON"
    say "Python $PY_VERSION ($PY_BIN, $which); ansible-core $CORE_VERSION ($how); work dir $WORK"
}

# ---------------------------------------------------------------- ansible-test environment

# the pip version ansible-test bootstraps into its virtual environments
ansible_test_pip_version() {
    local requirements
    requirements=$("$VENV/bin/python" -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')/_internal/python_requirements.py
    sed -n "s/.*pip='\([0-9.]*\)'.*/\1/p" "$requirements" | head -n 1
}

shellcheck_on_path() {
    command -v shellcheck >/dev/null 2>&1 && return 0
    local root="$WORK/tools/shellcheck"
    if [ ! -x "$root/usr/bin/shellcheck" ] && command -v apt-get >/dev/null 2>&1; then
        mkdir -p "$root"
        (cd "$root" && { apt-get download shellcheck >/dev/null 2>&1 || { [ "$(id -u)" = 0 ] && apt-get update -qq >/dev/null 2>&1 && apt-get download shellcheck >/dev/null 2>&1; }; } &&
            dpkg-deb -x shellcheck_*.deb . && rm -f shellcheck_*.deb) || true
    fi
    if [ -x "$root/usr/bin/shellcheck" ]; then
        ln -sf "$root/usr/bin/shellcheck" "$WORK/bin/shellcheck"
    else
        say "shellcheck is not installed and could not be fetched: ansible-test skips its shellcheck sanity test"
    fi
}

# ansible-test needs pythonX.Y on PATH, a get-pip script it can run offline, and a HOME of its own (its caches and
# sanity venvs live there, per work dir); it passes only PATH, HOME and a few more variables to what it runs
setup_ansible_test() {
    mkdir -p "$WORK/bin" "$WORK/home/.ansible/test/cache" "$LOGS"
    ln -sf "$PY_BIN" "$WORK/bin/python$PY_VERSION"
    export PATH="$WORK/bin:$VENV/bin:$PATH"
    export HOME="$WORK/home"
    local pip_version
    pip_version=$(ansible_test_pip_version)
    [ -n "$pip_version" ] || fail "cannot tell which pip ansible-test $CORE_VERSION bootstraps"
    cp "$HARNESS/get_pip_offline.py" "$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
}

# ---------------------------------------------------------------- collection copy

# ansible-test wants the collection at .../ansible_collections/entra/autopilot (a real directory, not a symlink);
# copy what git tracks plus untracked files that are not ignored, keep ansible-test's tests/output (its venvs).
# The copy is a git repository of its own (with nothing committed): ansible-test and ansible-lint take the file list
# from the nearest .git above them, and without this one that would be the source tree, where .work/ is ignored.
sync_copy() {
    mkdir -p "$COPY"
    find "$COPY" -mindepth 1 -maxdepth 1 ! -name tests ! -name .git -exec rm -rf {} +
    if [ -d "$COPY/tests" ]; then
        find "$COPY/tests" -mindepth 1 -maxdepth 1 ! -name output -exec rm -rf {} +
    fi
    if git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        (cd "$REPO" && git ls-files -z --cached --others --exclude-standard |
            while IFS= read -r -d '' file; do [ -e "$file" ] && printf '%s\0' "$file"; done |
            tar --null -T - -cf -) | tar -xf - -C "$COPY"
    else
        (cd "$REPO" && tar -cf - --exclude=./.work --exclude='./.work-*' --exclude=./tests/output --exclude=./.git \
            --exclude=./.ansible --exclude=__pycache__ .) | tar -xf - -C "$COPY"
    fi
    [ -d "$COPY/.git" ] || git init -q "$COPY"
}

# ---------------------------------------------------------------- emulator

stop_emulator() {
    if [ -n "$EMULATOR_PID" ] && kill -0 "$EMULATOR_PID" 2>/dev/null; then
        kill -TERM "$EMULATOR_PID" 2>/dev/null || true
        local _
        for _ in $(seq 50); do
            kill -0 "$EMULATOR_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$EMULATOR_PID" 2>/dev/null || true
        wait "$EMULATOR_PID" 2>/dev/null || true
    fi
    EMULATOR_PID=""
}

# starts the emulator in the background from source dir $1; sets EMULATOR_STATE
start_emulator() {
    local source=$1
    [ -d "$source/tests/emulator/graph_emulator" ] || fail "the emulator is missing: $source/tests/emulator/graph_emulator"
    mkdir -p "$EMULATOR_DIR"
    EMULATOR_STATE="$EMULATOR_DIR/state.json"
    rm -f "$EMULATOR_STATE"
    trap stop_emulator EXIT
    PYTHONPATH="$source/tests/emulator" "$VENV/bin/python" -m graph_emulator \
        --state-file "$EMULATOR_STATE" --workdir "$EMULATOR_DIR/files" --exit-with-parent >"$EMULATOR_DIR/emulator.log" 2>&1 &
    EMULATOR_PID=$!
    local _
    for _ in $(seq 300); do
        if [ -s "$EMULATOR_STATE" ] && "$VENV/bin/python" -c 'import json, sys; json.load(open(sys.argv[1]))' "$EMULATOR_STATE" 2>/dev/null; then
            say "emulator running at $(state_value url) (pid $EMULATOR_PID, log $EMULATOR_DIR/emulator.log)"
            return 0
        fi
        if ! kill -0 "$EMULATOR_PID" 2>/dev/null; then
            tail -n 30 "$EMULATOR_DIR/emulator.log" >&2 || true
            fail "the emulator exited before it was ready (log: $EMULATOR_DIR/emulator.log)"
        fi
        sleep 0.1
    done
    fail "the emulator did not write $EMULATOR_STATE within 30 s (log: $EMULATOR_DIR/emulator.log)"
}

# a value from the state file: `state_value demo.tenant_id`
state_value() {
    "$VENV/bin/python" -c '
import json, sys
value = json.load(open(sys.argv[1]))
for key in sys.argv[2].split("."):
    value = value[key]
print(value)' "$EMULATOR_STATE" "$1"
}

# ---------------------------------------------------------------- steps

# runs a command with its output also in $LOGS/$1.log; fails with the step name
run_logged() {
    local name=$1
    shift
    local started=$SECONDS status=0
    "$@" 2>&1 | tee "$LOGS/$name.log" || status=$?
    [ "$status" = 0 ] || fail "$name (exit $status; log: $LOGS/$name.log)"
    say "$name passed in $((SECONDS - started)) s"
}

# shellcheck disable=SC2086 # ANSIBLE_TEST_ARGS is a list of words
step_sanity() {
    shellcheck_on_path
    cd "$COPY"
    run_logged sanity ansible-test sanity --venv --python "$PY_VERSION" ${ANSIBLE_TEST_ARGS:-}
    say "sanity summary: $(grep -c '^Running sanity test ' "$LOGS/sanity.log" || true) tests run on ansible-core $CORE_VERSION / Python $PY_VERSION"
}

# shellcheck disable=SC2086
step_units() {
    cd "$COPY"
    run_logged units ansible-test units --venv --python "$PY_VERSION" ${ANSIBLE_TEST_ARGS:-}
    say "units summary (ansible-core $CORE_VERSION / Python $PY_VERSION): $(grep -E '^=+ .*(passed|failed|error|no tests ran).* =+$' "$LOGS/units.log" | tail -n 1 | tr -d '=' | sed 's/^ *//; s/ *$//')"
}

# shellcheck disable=SC2086
step_integration() {
    start_emulator "$COPY"
    "$VENV/bin/python" "$HARNESS/integration_config.py" "$EMULATOR_STATE" "$VENV/bin/python" \
        "$COPY/tests/integration/integration_config.yml"
    cd "$COPY"
    run_logged integration ansible-test integration --venv --python "$PY_VERSION" ${ANSIBLE_TEST_ARGS:-}
    rm -f "$COPY/tests/integration/integration_config.yml"
    stop_emulator
    say "integration summary (ansible-core $CORE_VERSION / Python $PY_VERSION): $(grep -cE '^Running .* integration test (role|script)$' "$LOGS/integration.log" || true) targets passed"
}

# ansible-lint (production profile), then antsibull-docs on the module and role documentation (markup, references
# to other plugins and options), the check the Ansible docs site applies
step_lint() {
    local tools="$WORK/venv/lint-py$PY_VERSION"
    ensure_venv "$tools" "$PY_BIN" ansible-lint antsibull-docs
    cd "$COPY"
    local -a color=()
    [ -t 1 ] || color=(--nocolor)
    # both run ansible-core's commands, which must be the lint venv's
    PATH="$tools/bin:$PATH" run_logged lint "$tools/bin/ansible-lint" --profile production "${color[@]}"
    PATH="$tools/bin:$PATH" run_logged docs-lint "$tools/bin/antsibull-docs" lint-collection-docs --plugin-docs \
        --validate-collection-refs all .
}

# `make demo`: entra.autopilot.allow_device_join against two emulator tenants (Contoso, the demo tenant, and Fabrikam,
# made from the unrestricted seed) as an administrator runs it: the demo tenant's policy with its members resolved
# (playbooks/demo.yml), a check-mode preview with diff, the real run, a second run that must change nothing, then
# entra.autopilot.audit_device_join; the last line is the HTML report's path.
step_demo() {
    start_emulator "$REPO"
    local demo="$WORK/demo" inventory log
    rm -rf "$demo"
    inventory=$("$VENV/bin/python" "$HARNESS/demo_inventory.py" "$EMULATOR_STATE" "$demo") || fail "could not write the demo inventory"
    local -a playbook=(env ANSIBLE_COLLECTIONS_PATH="$WORK" ANSIBLE_HOME="$WORK/ansible-home" ANSIBLE_LOCALHOST_WARNING=false
        ANSIBLE_CALLBACK_RESULT_FORMAT=yaml "$VENV/bin/ansible-playbook" -i "$inventory")
    say "1/5 the demo tenant (Contoso) as it is now: ansible-playbook playbooks/demo.yml (read-only)"
    env AZURE_TENANT_ID="$(state_value demo.tenant_id)" AZURE_CLIENT_ID="$(state_value demo.client_id)" \
        AZURE_CLIENT_SECRET="$(state_value demo.client_secret)" AZURE_AUTHORITY_HOST="$(state_value authority_host)" \
        ENTRA_GRAPH_ENDPOINT="$(state_value graph_endpoint)" "${playbook[@]}" "$REPO/playbooks/demo.yml" \
        -e "entra_ca_bundle=$(state_value ca_bundle)" || fail "reading the demo tenant failed (emulator log: $EMULATOR_DIR/emulator.log)"
    say "inventory (one host per tenant, connection in entra_* host variables): $inventory"
    say "2/5 preview: ansible-playbook -i $inventory entra.autopilot.allow_device_join --check --diff"
    "${playbook[@]}" entra.autopilot.allow_device_join --check --diff || fail "the preview failed (emulator log: $EMULATOR_DIR/emulator.log)"
    say "3/5 apply: ansible-playbook -i $inventory entra.autopilot.allow_device_join"
    "${playbook[@]}" entra.autopilot.allow_device_join || fail "the run failed (emulator log: $EMULATOR_DIR/emulator.log)"
    say "4/5 apply again: nothing may change"
    log="$demo/second-run.log"
    "${playbook[@]}" entra.autopilot.allow_device_join | tee "$log"
    [ "${PIPESTATUS[0]}" = 0 ] || fail "the second run failed (emulator log: $EMULATOR_DIR/emulator.log)"
    if grep -Eq '^[^ ]+ +: ok=[0-9]+ +changed=[1-9]' "$log"; then
        fail "the second run changed something; it should report changed=0 for every tenant ($log)"
    fi
    say "5/5 audit: ansible-playbook -i $inventory entra.autopilot.audit_device_join -e audit_report_dir=$demo/audit"
    "${playbook[@]}" entra.autopilot.audit_device_join -e "audit_report_dir=$demo/audit" ||
        fail "the audit failed (emulator log: $EMULATOR_DIR/emulator.log)"
    stop_emulator
    say "demo done; the emulator is stopped. Run 'make emulator' to start it and try your own playbooks."
    DEMO_REPORT="$demo/audit/device_join_audit.html"
}

step_emulator() {
    start_emulator "$REPO"
    cat <<EOF
The emulator runs until you press Ctrl-C. To point the modules at its demo tenant:

  export AZURE_TENANT_ID=$(state_value demo.tenant_id)
  export AZURE_CLIENT_ID=$(state_value demo.client_id)
  export AZURE_CLIENT_SECRET=$(state_value demo.client_secret)
  export AZURE_AUTHORITY_HOST=$(state_value authority_host)
  export ENTRA_GRAPH_ENDPOINT=$(state_value graph_endpoint)
  export REQUESTS_CA_BUNDLE=$(state_value ca_bundle)
  export ANSIBLE_COLLECTIONS_PATH=$WORK
  $VENV/bin/ansible-playbook playbooks/demo.yml

State file (all URLs and credentials): $EMULATOR_STATE
Control API: $(state_value control_url)
EOF
    trap 'stop_emulator; exit 0' INT TERM
    wait "$EMULATOR_PID" || true
}

# benchmarks (not part of make test): bench/run_bench.py against the emulator with modelled latency; prints the
# tables and writes them to $WORK/bench/results.json (BENCH_RUNS, BENCH_LATENCY_MS tune it)
step_bench() {
    start_emulator "$COPY"
    mkdir -p "$WORK/bench"
    "$VENV/bin/python" "$COPY/bench/run_bench.py" --state "$EMULATOR_STATE" --emulator-path "$COPY/tests/emulator" \
        --collections "$WORK" --work "$WORK/bench" --out "$WORK/bench/results.json" ||
        fail "bench (ansible-playbook logs in $WORK/bench/logs, emulator log $EMULATOR_DIR/emulator.log)"
    stop_emulator
}

# every step in a process of its own, so that one failing step does not hide the others' results
step_test() {
    local part
    local -a failed=()
    for part in sanity units integration lint; do
        "$HARNESS/run.sh" "$part" || failed+=("$part")
    done
    [ "${#failed[@]}" = 0 ] || fail "make test: ${failed[*]} failed (logs in $LOGS)"
    say "make test passed: sanity, units, integration and lint on ansible-core $CORE_VERSION / Python $PY_VERSION"
}

step_clean() {
    # only the harness's own output: the work dir and what ansible-test may leave in the source tree
    rm -rf "$WORK" "$REPO/tests/output" "$REPO/tests/integration/inventory" "$REPO/tests/integration/integration_config.yml"
    say "removed $WORK"
}

main() {
    [ "$#" -gt 0 ] || set -- test
    local step
    local -a steps=()
    for step in "$@"; do
        case "$step" in
            clean) step_clean ;;
            sanity | units | integration | lint | demo | emulator | test | bench) steps+=("$step") ;;
            *) fail "unknown step '$step' (demo sanity units integration lint test emulator bench clean)" ;;
        esac
    done
    [ "${#steps[@]}" -gt 0 ] || return 0

    local started=$SECONDS
    setup_core
    sync_copy
    for step in "${steps[@]}"; do
        case "$step" in
            sanity | units | integration | lint)
                setup_ansible_test
                "step_$step"
                ;;
            test) step_test ;;
            *) "step_$step" ;;
        esac
    done
    say "all done in $((SECONDS - started)) s: ${steps[*]}"
    [ -z "${DEMO_REPORT:-}" ] || say "audit report (open it in a browser): $DEMO_REPORT"
}

main "$@"
