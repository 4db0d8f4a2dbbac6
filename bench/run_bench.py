# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""``make bench``: request economy, the collection against a hand-written ``uri`` playbook, and scale.

Runs against a running emulator (``--state``, its state file) with a modelled network latency on every request.
Every comparison is a ratio of two medians measured side by side in this run (the variants take turns, run after
run), because the machine is shared and absolute times are noisy. Prints the tables and writes them as JSON.
Nothing here is a test: it prints numbers and fails only when a run itself fails.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
PLAYBOOKS = os.path.join(HERE, 'playbooks')
NAME_COUNTS = (1, 20, 100, 1000, 5000)
BATCH_SIZE = 20


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float('nan')


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float('nan')


class Bench:
    """The emulator, its tenants, and ansible-playbook runs against them."""

    def __init__(self, args: argparse.Namespace) -> None:
        with open(args.state, encoding='utf-8') as handle:
            self.state = json.load(handle)
        sys.path.insert(0, args.emulator_path)
        sys.path.insert(0, args.collections)
        from graph_emulator.control import EmulatorControl  # pylint: disable=import-outside-toplevel
        self.control = EmulatorControl(self.state['control_url'], self.state['ca_bundle'], timeout=120)
        self.runs = args.runs
        self.latency = args.latency
        self.work = os.path.abspath(args.work)
        self.collections = args.collections
        self.python = sys.executable
        self.playbook_bin = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')
        for folder in ('inventories', 'logs', 'tmp', 'ansible-home'):
            os.makedirs(os.path.join(self.work, folder), mode=0o700, exist_ok=True)
        self.demo_state = self.control.state(self.state['demo']['tenant_id'])
        self.env = {name: value for name, value in os.environ.items() if not name.startswith(('AZURE_', 'ENTRA_', 'ANSIBLE_'))}
        self.env.update({
            'ANSIBLE_COLLECTIONS_PATH': self.collections,
            'ANSIBLE_HOME': os.path.join(self.work, 'ansible-home'),
            # the modules' temp dirs too (for a local connection ansible puts them under ~/.ansible/tmp otherwise)
            'ANSIBLE_REMOTE_TMP': os.path.join(self.work, 'ansible-home', 'tmp'),
            'ANSIBLE_LOCALHOST_WARNING': 'false',
            'ANSIBLE_INVENTORY_UNPARSED_WARNING': 'false',
            'ANSIBLE_DEPRECATION_WARNINGS': 'false',
            'ANSIBLE_RETRY_FILES_ENABLED': 'false',
            'ANSIBLE_NOCOLOR': '1',
            # the token cache and the locks of these runs live here, apart from anything else on the machine
            'TMPDIR': os.path.join(self.work, 'tmp'),
        })
        self._playbook_runs = 0  # numbers the log and extra-vars files of each ansible-playbook run

    # -- tenants -----------------------------------------------------------------------------------------------

    def upns(self, count: int) -> list[str]:
        return ['member%04d@contoso.com' % number for number in range(1, count + 1)]

    def tenant(self, members: int = 0) -> dict[str, Any]:
        """A new tenant from the demo seed; with ``members``, that many more users, all in the Selected list."""
        # the emulator's own id rule, so the Selected list names the users it will generate
        from graph_emulator.directory import generated_user_id  # pylint: disable=import-outside-toplevel
        state = copy.deepcopy(self.demo_state)  # plain JSON data from the control API
        join = state['policy']['azureADJoin']['allowedToJoin']
        if members:
            state['generated_users'] = [{'count': members, 'userPrincipalName': 'member{n:04d}@contoso.com', 'displayName': 'Member {n}'}]
            join['users'] = [generated_user_id(upn) for upn in self.upns(members)]
        credentials = self.control.new_tenant(str(uuid.uuid4()), state=state)
        credentials['expected_users'] = sorted(join.get('users', []))
        credentials['expected_groups'] = sorted(join.get('groups', []))
        return credentials

    @staticmethod
    def connection(tenant: dict[str, Any]) -> dict[str, str]:
        return {name: tenant[name] for name in ('tenant_id', 'client_id', 'client_secret', 'authority_host', 'graph_endpoint', 'ca_bundle')}

    def inventory(self, name: str, group: str, tenants: list[dict[str, Any]]) -> str:
        hosts = {'%s%02d' % (group, index + 1): {'entra_connection': self.connection(tenant), 'expected_users': tenant['expected_users'],
                                                 'expected_groups': tenant['expected_groups']}
                 for index, tenant in enumerate(tenants)}
        data = {'all': {'vars': {'ansible_connection': 'local', 'ansible_python_interpreter': self.python},
                        'children': {group: {'hosts': hosts}}}}
        return self._private_json(os.path.join(self.work, 'inventories', name + '.json'), data)

    @staticmethod
    def _private_json(path: str, data: Any) -> str:
        """A file only this user can read: it holds the emulator tenants' client secrets."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, 'w', encoding='utf-8') as handle:
            json.dump(data, handle)
        return path

    # -- runs --------------------------------------------------------------------------------------------------

    def playbook(self, playbook: str, inventory: str, extra: dict[str, Any] | None = None, *, forks: int = 1, check: bool = False) -> float:
        """Run one playbook; its wall time in seconds. A failed run stops the benchmark with the end of its output."""
        self._playbook_runs += 1
        command = [self.playbook_bin, '-i', inventory, os.path.join(PLAYBOOKS, playbook), '-f', str(forks)]
        if extra:
            command += ['-e', '@' + self._private_json(os.path.join(self.work, 'inventories', 'extra-%d.json' % self._playbook_runs), extra)]
        if check:
            command.append('--check')
        log = os.path.join(self.work, 'logs', 'run-%04d-%s.log' % (self._playbook_runs, playbook.replace('.yml', '')))
        started = time.monotonic()
        with open(log, 'w', encoding='utf-8') as output:
            status = subprocess.run(command, env=self.env, stdout=output, stderr=subprocess.STDOUT, check=False).returncode
        seconds = time.monotonic() - started
        if status != 0:
            with open(log, encoding='utf-8') as output:
                tail = output.read()[-3000:]
            raise SystemExit('bench: %s failed (exit %d; log %s):\n%s' % (playbook, status, log, tail))
        return seconds

    def counts(self, tenants: list[dict[str, Any]], since: int) -> dict[str, int]:
        """Requests the tenants received since ``since``, by kind."""
        found = {'token': 0, 'discovery': 0, 'policy_get': 0, 'put': 0, 'get_by_ids': 0, 'batch': 0, 'batch_items': 0,
                 'count_items': 0, 'other': 0, 'graph': 0}
        # one log request for all tenants (50 in the scale audit), matched as the emulator's tenant filter does
        wanted = {tenant['tenant_id'].lower() for tenant in tenants}
        for entry in self.control.log(since=since):
            if (entry.get('tenant') or '').lower() not in wanted:
                continue
            kind, method, path = entry['kind'], entry['method'], entry['path']
            if kind in ('token', 'msi'):
                found['token'] += 1
            elif kind == 'discovery':
                found['discovery'] += 1
            elif kind == 'batch-item':
                found['batch_items'] += 1
                found['count_items'] += path.endswith('/$count')
            elif kind == 'graph':
                found['graph'] += 1
                if path.endswith('/policies/deviceRegistrationPolicy'):
                    found['policy_get' if method == 'GET' else 'put'] += 1
                elif path.endswith('/directoryObjects/getByIds'):
                    found['get_by_ids'] += 1
                elif path.endswith('/$batch'):
                    found['batch'] += 1
                else:
                    found['other'] += 1
        return found

    def timed_pairs(self, variants: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
        """Each variant ``runs`` times, taking turns (A B C A B C ...), so that load changes hit all of them alike."""
        times: dict[str, list[float]] = {name: [] for name in variants}
        for _run in range(self.runs):
            for name, variant in variants.items():
                times[name].append(variant())
        return times


# --- 1. request economy ------------------------------------------------------------------------------------------------

def economy(bench: Bench) -> list[dict[str, Any]]:
    """One run of each case, normal and check mode, without and with a (warm) token cache, counted from the log."""
    from graph_emulator.testing import DEMO_IDS  # pylint: disable=import-outside-toplevel
    demo = bench.tenant()
    member_tenant = bench.tenant()
    named = {count: bench.tenant(members=count) for count in NAME_COUNTS}
    as_is = {'allowed_to_join': 'selected', 'groups': [DEMO_IDS['technicians']]}
    # the demo seed's Selected list as it is: two users (one deleted) and one group
    cases: list[tuple[str, dict[str, Any], str, dict[str, Any], dict[str, int]]] = [
        ('info module', demo, 'info', {}, {'policy_get': 1, 'get_by_ids': 1, 'batch': 1}),
        ('policy, idempotent, ids', demo, 'policy', dict(as_is, users=[DEMO_IDS['megan'], DEMO_IDS['diego_deleted']]), {'policy_get': 1}),
    ]
    for count, tenant in named.items():
        cases.append(('policy, idempotent, %d name%s' % (count, '' if count == 1 else 's'), tenant, 'policy', dict(as_is, users=bench.upns(count)),
                      {'policy_get': 1, 'batch': math.ceil(count / BATCH_SIZE)}))
    cases.append(('member, add 1 user by UPN', member_tenant, 'member', {'users': ['AlexW@contoso.com']}, {'policy_get': 1, 'batch': 1, 'put': 1}))

    # warm the token cache of every tenant once (not counted), so that the cached runs below show a warm cache
    for tenant in [demo, member_tenant, *named.values()]:
        bench.playbook('module.yml', bench.inventory('warm', 'bench', [tenant]), {'bench_module': 'info', 'bench_token_cache': True})

    rows = []
    for label, tenant, module, args, minimum in cases:
        inventory = bench.inventory('economy', 'bench', [tenant])
        for check in (False, True):
            row: dict[str, Any] = {'scenario': label, 'mode': 'check' if check else 'normal'}
            for cache in (False, True):
                if module == 'member':
                    bench.control.reset(tenant['tenant_id'])  # so that every run adds the user again
                since = bench.control.last_seq()
                bench.playbook('module.yml', inventory, {'bench_module': module, 'bench_args': args, 'bench_token_cache': cache}, check=check)
                counted = bench.counts([tenant], since)
                if cache:
                    row['token_cached'] = counted['token']
                    row['discovery_cached'] = counted['discovery']
                else:
                    row.update(counted)
            wanted = dict(minimum)
            if check:
                wanted.pop('put', None)
            row['minimum'] = wanted
            row['minimum_graph'] = sum(wanted.values())
            row['ratio'] = ratio(row['graph'], row['minimum_graph'])
            rows.append(row)
            print('  economy: %-32s %-6s token %d (cached %d), Graph calls %d (minimum %d)'
                  % (label, row['mode'], row['token'], row['token_cached'], row['graph'], row['minimum_graph']), flush=True)
    return rows


# --- 2. against the uri playbook, and 3b. many tenants ----------------------------------------------------------------------

def audit(bench: Bench, tenants: list[dict[str, Any]], forks: int, label: str) -> dict[str, Any]:
    """The check-mode audit of ``tenants``: collection (no cache, warm cache) and the uri playbook, side by side."""
    inventory = bench.inventory('audit-%s' % label, 'tenants', tenants)
    bench.playbook('audit_collection.yml', inventory, {'bench_token_cache': True}, forks=forks)  # warms the cache
    requests: dict[str, dict[str, int]] = {}

    def variant(name: str, playbook: str, extra: dict[str, Any]) -> Callable[[], float]:
        def run() -> float:
            since = bench.control.last_seq()
            seconds = bench.playbook(playbook, inventory, extra, forks=forks)
            requests[name] = bench.counts(tenants, since)
            return seconds
        return run

    times = bench.timed_pairs({
        'collection': variant('collection', 'audit_collection.yml', {'bench_token_cache': False}),
        'collection_cached': variant('collection_cached', 'audit_collection.yml', {'bench_token_cache': True}),
        'uri': variant('uri', 'audit_uri.yml', {}),
    })
    result: dict[str, Any] = {'tenants': len(tenants), 'forks': forks, 'runs': bench.runs, 'times': times}
    for name, values in times.items():
        result[name + '_s'] = median(values)
        per_tenant = {kind: value / len(tenants) for kind, value in requests[name].items()}
        result[name + '_requests_per_tenant'] = per_tenant['token'] + per_tenant['discovery'] + per_tenant['graph']
        result[name + '_requests'] = requests[name]
    result['ratio'] = ratio(result['collection_s'], result['uri_s'])
    result['ratio_cached'] = ratio(result['collection_cached_s'], result['uri_s'])
    print('  audit: %2d tenants, forks %2d: collection %.2f s, with token cache %.2f s, uri %.2f s (ratios %.2f, %.2f)'
          % (len(tenants), forks, result['collection_s'], result['collection_cached_s'], result['uri_s'], result['ratio'],
             result['ratio_cached']), flush=True)
    return result


# --- 3a. 5,000 names ----------------------------------------------------------------------------------------------------

def resolve_names(bench: Bench, tenant: dict[str, Any], count: int) -> dict[str, Any]:
    """PrincipalResolver.resolve of ``count`` UPNs: one after the other against in parallel, side by side in-process."""
    # pylint: disable=import-outside-toplevel
    from ansible_collections.entra.autopilot.plugins.module_utils._auth import acquire_token, build_session, settings_from_params
    from ansible_collections.entra.autopilot.plugins.module_utils._graph_client import PARALLEL_CALLS, GraphClient
    from ansible_collections.entra.autopilot.plugins.module_utils._principals import PrincipalResolver

    settings = settings_from_params(bench.connection(tenant))
    session = build_session(settings)
    token = acquire_token(settings, session)
    upns = bench.upns(count)
    requests: dict[str, dict[str, int]] = {}

    def variant(name: str, parallel: int) -> Callable[[], float]:
        def run() -> float:
            client = GraphClient(session, settings.graph_endpoint, settings.api_version, token, timeout=60, max_retries=5,
                                 max_parallel=parallel)
            since = bench.control.last_seq()
            started = time.monotonic()
            resolved = PrincipalResolver(client).resolve(upns, [])
            seconds = time.monotonic() - started
            assert len(resolved.users) == count
            requests[name] = bench.counts([tenant], since)
            return seconds
        return run

    times = bench.timed_pairs({'parallel': variant('parallel', PARALLEL_CALLS), 'sequential': variant('sequential', 1)})
    result = {'names': count, 'parallel_calls': PARALLEL_CALLS, 'times': times, 'parallel_s': median(times['parallel']),
              'sequential_s': median(times['sequential']), 'requests': requests['parallel']}
    result['ratio'] = ratio(result['parallel_s'], result['sequential_s'])
    print('  resolve %d names: parallel %.2f s, one after the other %.2f s (ratio %.2f), %d $batch requests'
          % (count, result['parallel_s'], result['sequential_s'], result['ratio'], requests['parallel']['batch']), flush=True)
    return result


def module_names(bench: Bench, tenant: dict[str, Any], count: int) -> dict[str, Any]:
    """The policy module in check mode with ``count`` member names (idempotent): wall time and requests."""
    from graph_emulator.testing import DEMO_IDS  # pylint: disable=import-outside-toplevel
    inventory = bench.inventory('names', 'bench', [tenant])
    extra = {'bench_module': 'policy', 'bench_args': {'allowed_to_join': 'selected', 'users': bench.upns(count), 'groups': [DEMO_IDS['technicians']]}}
    requests: dict[str, int] = {}

    def run() -> float:
        since = bench.control.last_seq()
        seconds = bench.playbook('module.yml', inventory, extra, check=True)
        requests.update(bench.counts([tenant], since))
        return seconds

    times = bench.timed_pairs({'module': run})['module']
    print('  policy module, %d names, check mode: %.2f s, %d Graph calls' % (count, median(times), requests['graph']), flush=True)
    return {'names': count, 'times': times, 'module_s': median(times), 'requests': requests}


# --- output --------------------------------------------------------------------------------------------------------------

def table(headers: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return 'n/a' if math.isnan(value) else '%.2f' % value
        return str(value)

    text = [[cell(value) for value in row] for row in rows]
    widths = [max(len(header), *(len(row[index]) for row in text)) for index, header in enumerate(headers)]
    lines = [' | '.join(header.ljust(width) for header, width in zip(headers, widths)),
             '-|-'.join('-' * width for width in widths)]
    lines += [' | '.join(value.rjust(width) if index else value.ljust(width) for index, (value, width) in enumerate(zip(row, widths)))
              for row in text]
    return '\n'.join(lines)


def report(results: dict[str, Any]) -> str:
    parts = ['entra.autopilot benchmark: %(latency_ms)d ms emulator latency per request, medians of %(runs)d runs, %(machine)s'
             % results['settings']]
    parts.append('\n1. Request economy (one run each; Graph calls = every Graph request but the token; ratio = Graph calls / minimum)')
    parts.append(table(
        ['scenario', 'mode', 'token', 'token (cache)', 'discovery', 'policy GET', 'getByIds', '$batch', 'lookups', '$count', 'PUT',
         'Graph calls', 'minimum', 'ratio'],
        [[row['scenario'], row['mode'], row['token'], row['token_cached'], '%d (%d)' % (row['discovery'], row['discovery_cached']),
          row['policy_get'], row['get_by_ids'], row['batch'], row['batch_items'], row['count_items'], row['put'], row['graph'],
          row['minimum_graph'], row['ratio']] for row in results['economy']]))
    parts.append('\n2. Check-mode audit, the collection against a hand-written ansible.builtin.uri playbook (wall time, s; '
                 'ratio = collection / uri)')
    audit_rows = results['audit'] + results['scale']['tenants']
    parts.append(table(
        ['tenants', 'forks', 'collection', 'with token cache', 'uri', 'ratio', 'ratio (cache)', 'requests/tenant (collection, cache, uri)'],
        [[row['tenants'], row['forks'], row['collection_s'], row['collection_cached_s'], row['uri_s'], row['ratio'], row['ratio_cached'],
          '%.1f, %.1f, %.1f' % (row['collection_requests_per_tenant'], row['collection_cached_requests_per_tenant'],
                                row['uri_requests_per_tenant'])] for row in audit_rows]))
    scale = results['scale']
    parts.append('\n3. Scale: %d member names' % scale['resolve']['names'])
    parts.append(table(
        ['what', 'wall s', 'one after the other s', 'ratio', 'Graph calls', 'lookups'],
        [['resolve (in-process, %d in flight)' % scale['resolve']['parallel_calls'], scale['resolve']['parallel_s'],
          scale['resolve']['sequential_s'], scale['resolve']['ratio'], scale['resolve']['requests']['graph'],
          scale['resolve']['requests']['batch_items']],
         ['policy module run, check mode', scale['module']['module_s'], '', '', scale['module']['requests']['graph'],
          scale['module']['requests']['batch_items']]]))
    return '\n'.join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--state', required=True, help="the emulator's state file")
    parser.add_argument('--emulator-path', required=True, help='the folder holding the graph_emulator package')
    parser.add_argument('--collections', required=True, help='the folder holding ansible_collections/entra/autopilot')
    parser.add_argument('--work', required=True, help='where inventories, logs and the token cache of the runs go')
    parser.add_argument('--out', required=True, help='the JSON file to write')
    parser.add_argument('--runs', type=int, default=int(os.environ.get('BENCH_RUNS') or 3), help='runs per timed variant (median)')
    parser.add_argument('--latency', type=float, default=float(os.environ.get('BENCH_LATENCY_MS') or 50) / 1000,
                        help='seconds the emulator adds to every request')
    args = parser.parse_args(argv)
    bench = Bench(args)
    bench.control.set_latency(bench.latency)
    load = os.getloadavg()
    results: dict[str, Any] = {'settings': {
        'latency_ms': round(bench.latency * 1000), 'runs': bench.runs, 'cpus': os.cpu_count(), 'python': platform.python_version(),
        'machine': '%d CPUs, load %.1f at the start' % (os.cpu_count() or 0, load[0]), 'started': time.strftime('%Y-%m-%d %H:%M:%S')}}
    started = time.monotonic()
    try:
        print('==> 1. request economy', flush=True)
        results['economy'] = economy(bench)
        print('==> 2. audit against the uri playbook', flush=True)
        audit_tenants = [bench.tenant() for _index in range(50)]
        results['audit'] = [audit(bench, audit_tenants[:count], forks, 'k%d-f%d' % (count, forks)) for count in (1, 20) for forks in (1, 10)]
        print('==> 3. scale', flush=True)
        names = bench.tenant(members=5000)
        results['scale'] = {'resolve': resolve_names(bench, names, 5000), 'module': module_names(bench, names, 5000),
                            'tenants': [audit(bench, audit_tenants, forks, 'k50-f%d' % forks) for forks in (1, 5, 10)]}
    finally:
        bench.control.set_latency(0)
    results['settings']['seconds'] = round(time.monotonic() - started)
    results['settings']['load_at_end'] = round(os.getloadavg()[0], 1)
    text = report(results)
    print('\n' + text)
    with open(args.out, 'w', encoding='utf-8') as handle:
        json.dump(results, handle, indent=2)
    with open(os.path.splitext(args.out)[0] + '.txt', 'w', encoding='utf-8') as handle:
        handle.write(text + '\n')
    print('\nwrote %s (and the table as %s.txt) in %d s' % (args.out, os.path.splitext(args.out)[0], results['settings']['seconds']))
    return 0


if __name__ == '__main__':
    sys.exit(main())
