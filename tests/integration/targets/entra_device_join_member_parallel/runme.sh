#!/usr/bin/env bash
# 20 forks of entra_device_join_member at once against one tenant (issue 4, "Parallel runs"): each of 20 hosts adds
# its own user, then each removes it, while the emulator delays every GET and PUT of the policy so that the forks'
# read-modify-writes overlap. parallel.yml and check_phase.yml check that every user landed (and left) with exactly
# one PUT per fork and that nothing else in the policy changed.
#
# There is deliberately no variant without the lock here, and the module has no switch to disable it: the control
# that shows this scenario loses updates without the lock and the read-back is the unit test
# tests/unit/plugins/module_utils/test_parallel_members.py (20 writers, same latency; it asserts that updates ARE
# lost then). Here a lost update would fail the checks: a user missing from the list, or more than 20 PUTs when the
# read-back had to repair one.
#
# ansible-test gives a runme.sh target the inventory in $INVENTORY_PATH (one host, testhost, whose interpreter is
# the Python that runs the tests) and passes no environment variables from outside; integration_config.yml, which
# tests/harness writes with the emulator's URLs, is copied to ../../integration_config.yml but, unlike for role
# targets, not loaded, so it is passed with -e here.
set -eu

config=../../integration_config.yml
if [ ! -f "$config" ]; then
    echo "runme.sh: $config is missing: run integration tests with 'make integration' (tests/harness writes it)" >&2
    exit 1
fi

# seconds added to every GET and PUT of the policy: long enough that forks overlap, short enough that the 20
# serialised read-write-read-backs of a phase take a few seconds
latency=0.1

run() {
    ANSIBLE_ROLES_PATH=.. ansible-playbook -i "$INVENTORY_PATH" -i crowd.yml -e "@$config" -e "policy_latency=$latency" "$@"
}

status=0
run --forks 20 parallel.yml "$@" || status=$?
if [ "$status" != 0 ]; then
    # parallel.yml removes the faults at its end; after a failure they would slow down this tenant until the emulator stops
    run cleanup.yml "$@" || true
fi
exit "$status"
