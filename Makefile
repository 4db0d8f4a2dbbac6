# Everything runs through tests/harness/run.sh. Settings: PYTHON=python3.12 ANSIBLE_CORE=2.19.* WORKDIR=/tmp/w
# ANSIBLE_TEST_ARGS='entra_device_join_member' (extra ansible-test arguments, e.g. one target or test).
HARNESS := tests/harness/run.sh
export PYTHON ANSIBLE_CORE WORKDIR ANSIBLE_TEST_ARGS BENCH_RUNS BENCH_LATENCY_MS

.PHONY: demo test sanity units integration lint emulator bench clean

demo test sanity units integration lint emulator bench clean:
	@$(HARNESS) $@
