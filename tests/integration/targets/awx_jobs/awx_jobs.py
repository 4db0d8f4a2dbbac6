# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""AWX-style jobs of entra.autopilot.allow_device_join and entra.autopilot.audit_device_join, through ansible-runner.

Two emulator tenants from the demo seed. "contoso" gets its connection from the credential's environment
(docs/awx-credential-type.yml rendered as AWX renders it, empty fields and all, into env/envvars); "fabrikam" from
host variables, as an MSP keeps one inventory host per customer. The desired state (group vars): Selected, with
AlexW@contoso.com and the group "IT Department" added, AlexW required to be able to join.

Jobs, each checked on its job events and on the emulator's request log and stored state:
1. onboarding, job type Check (--check --diff), contoso: ansible-runner passes --check, the role's task reports the
   pending change, the diff names the user, nothing is written;
2. onboarding, job type Run (verbosity 3), contoso: the role's task changed, one PUT, AlexW and the group are listed;
3. the same job again: nothing changed, no PUT;
4. audit, job type Check, both tenants: contoso compliant, fabrikam drifted with AlexW and the group to add, in the
   JSON and in the HTML report (parsed); nothing written to either tenant.
No job event and no stdout of any job holds a client secret or an access token.
Usage (from runme.sh): python awx_jobs.py integration_config.yml
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from typing import Any

import jinja2.sandbox
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
TENANTS = {'contoso': '8d3a0c67-2f0b-4a39-9c7e-4f1a3b5c7d01', 'fabrikam': '8d3a0c67-2f0b-4a39-9c7e-4f1a3b5c7d02'}
ALEX = 'AlexW@contoso.com'
GROUP = 'IT Department'
POLICY_PUT = re.compile(r'policies/deviceRegistrationPolicy$')
JWT = re.compile(r'eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.')


def policy_puts(control: Any, tenant_id: str, since: int) -> list[dict[str, Any]]:
    """The PUTs of the policy in the tenant's log entries after `since` (an EmulatorControl)."""
    return [entry for entry in control.log(tenant_id, since)
            if entry['kind'] == 'graph' and entry['method'] == 'PUT' and POLICY_PUT.search(entry['path'])]


def credential_environment(inputs: dict[str, str]) -> dict[str, str]:
    """env/envvars as AWX makes it from the custom credential type: every injector rendered, blank fields as ''."""
    with open(os.path.join(collection_root(), 'docs', 'awx-credential-type.yml'), encoding='utf-8') as handle:
        credential_type = yaml.safe_load(handle)
    fields = {field['id']: inputs.get(field['id'], field.get('default', '')) for field in credential_type['inputs']['fields']}
    environment = jinja2.sandbox.SandboxedEnvironment(undefined=jinja2.StrictUndefined)
    context = dict(fields, tower={'filename': ''})
    return {name: environment.from_string(template).render(context) for name, template in credential_type['injectors']['env'].items()}


def collection_root() -> str:
    for root in os.environ.get('ANSIBLE_COLLECTIONS_PATH', '').split(os.pathsep):
        candidate = os.path.join(root, 'ansible_collections', 'entra', 'autopilot')
        if os.path.isfile(os.path.join(candidate, 'galaxy.yml')):
            return candidate
    raise SystemExit('entra.autopilot is not on ANSIBLE_COLLECTIONS_PATH')


def write(path: str, content: Any) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as handle:
        handle.write(content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False))


def private_data_dir(work: str, config: dict[str, Any], tenants: dict[str, dict[str, Any]]) -> str:
    """A private data dir as AWX writes one for a job: project, inventory, env/envvars, env/extravars."""
    data = os.path.join(work, 'job')
    url = config['emulator_url'].rstrip('/')
    write(os.path.join(data, 'project', 'onboard.yml'), [{'ansible.builtin.import_playbook': 'entra.autopilot.allow_device_join'}])
    write(os.path.join(data, 'project', 'audit.yml'), [{'ansible.builtin.import_playbook': 'entra.autopilot.audit_device_join'}])
    fabrikam = tenants['fabrikam']
    write(os.path.join(data, 'inventory', 'hosts.yml'), {'tenants': {
        'vars': {
            'ansible_connection': 'local',
            'ansible_python_interpreter': sys.executable,
            'device_join_allowed_to_join': 'selected',
            'device_join_users': [ALEX],
            'device_join_groups': [GROUP],
            'device_join_required_members': [ALEX],
        },
        'hosts': {
            'contoso': {},  # everything from the credential
            'fabrikam': {
                'entra_tenant_id': fabrikam['tenant_id'], 'entra_client_id': fabrikam['client_id'],
                'entra_client_secret': fabrikam['client_secret'],
                'entra_authority_host': url, 'entra_graph_endpoint': url,
            },
        },
    }})
    contoso = tenants['contoso']
    envvars = credential_environment({'tenant_id': contoso['tenant_id'], 'client_id': contoso['client_id'],
                                      'client_secret': contoso['client_secret'], 'authority_host': url,
                                      'graph_endpoint': url})
    envvars.update({
        # what the execution environment provides in AWX: the collection, and private temp dirs
        'ANSIBLE_COLLECTIONS_PATH': os.environ['ANSIBLE_COLLECTIONS_PATH'],
        'ANSIBLE_LOCAL_TEMP': os.path.join(work, 'tmp-local'),
        'ANSIBLE_REMOTE_TMP': os.path.join(work, 'tmp-remote'),
        'ANSIBLE_HOME': os.path.join(work, 'ansible-home'),
    })
    write(os.path.join(data, 'env', 'envvars'), envvars)
    write(os.path.join(data, 'env', 'extravars'), {'entra_ca_bundle': config['emulator_ca_bundle'],
                                                   'audit_report_dir': os.path.join(work, 'reports')})
    return data


class Job:
    """One ansible-runner run and what it left in artifacts/<ident>."""

    def __init__(self, data: str, ident: str, playbook: str, cmdline: str) -> None:
        write(os.path.join(data, 'env', 'cmdline'), cmdline)
        completed = subprocess.run([sys.executable, '-m', 'ansible_runner', 'run', data, '-p', playbook, '--ident', ident],
                                   capture_output=True, text=True, check=False)
        self.artifacts = os.path.join(data, 'artifacts', ident)
        self.name = ident
        with open(os.path.join(self.artifacts, 'status'), encoding='utf-8') as handle:
            self.status = handle.read().strip()
        with open(os.path.join(self.artifacts, 'stdout'), encoding='utf-8') as handle:
            self.stdout = handle.read()
        # (this artifact also holds the job's environment, credential included, as AWX's does: it is not an event)
        with open(os.path.join(self.artifacts, 'command'), encoding='utf-8') as handle:
            self.command = json.load(handle)['command']
        self.event_texts: list[str] = []
        self.events: list[dict[str, Any]] = []
        for path in sorted(glob.glob(os.path.join(self.artifacts, 'job_events', '*.json'))):
            with open(path, encoding='utf-8') as handle:
                text = handle.read()
            self.event_texts.append(text)
            self.events.append(json.loads(text))
        print('job %s: %s, %d events (runner exit %d)' % (ident, self.status, len(self.events), completed.returncode))

    def ok_events(self) -> list[dict[str, Any]]:
        return [event['event_data'] for event in self.events if event.get('event') == 'runner_on_ok']

    def changed_tasks(self) -> list[str]:
        return [data['task'] for data in self.ok_events() if data.get('res', {}).get('changed')]

    def check(self, condition: bool, what: str) -> None:
        if not condition:
            raise SystemExit('job %s: %s\n--- stdout ---\n%s' % (self.name, what, self.stdout[-6000:]))


class ReportTable(HTMLParser):
    """The rows of the HTML report: tenant and status from the row's data attributes, and the row's text."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, str]] = {}
        self._row: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == 'tr' and values.get('data-tenant'):
            self._row = {'status': values.get('data-status') or '', 'text': ''}
            self.rows[values['data-tenant'] or ''] = self._row

    def handle_endtag(self, tag: str) -> None:
        if tag == 'tr':
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._row is not None:
            self._row['text'] += data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='integration_config.yml, with the emulator_* variables')
    with open(parser.parse_args().config, encoding='utf-8') as handle:
        config = yaml.safe_load(handle)
    sys.path.insert(0, os.path.join(collection_root(), 'tests', 'emulator'))
    from graph_emulator.control import EmulatorControl  # pylint: disable=import-outside-toplevel
    from graph_emulator.testing import DEMO_IDS  # pylint: disable=import-outside-toplevel
    emulator = EmulatorControl(config['emulator_control_url'], config['emulator_ca_bundle'])

    tenants = {name: emulator.new_tenant(tenant_id, 'demo') for name, tenant_id in TENANTS.items()}
    since = emulator.last_seq()  # log entries up to this one are from before the jobs
    secrets = [tenant['client_secret'] for tenant in tenants.values()]
    contoso_id, fabrikam_id = tenants['contoso']['tenant_id'], tenants['fabrikam']['tenant_id']

    with tempfile.TemporaryDirectory() as work:
        data = private_data_dir(work, config, tenants)
        jobs = []

        preview = Job(data, 'onboard-check', 'onboard.yml', '--check --diff --limit contoso')
        jobs.append(preview)
        preview.check(preview.status == 'successful', 'the check job did not succeed')
        preview.check('--check' in preview.command, 'ansible-runner did not pass --check: %s' % preview.command)
        preview.check(bool(preview.changed_tasks()), 'check mode did not report the pending change')
        preview.check(policy_puts(emulator, contoso_id, since) == [], 'the check job wrote to the tenant')
        preview.check(ALEX in preview.stdout, 'the diff does not name %s' % ALEX)

        onboard = Job(data, 'onboard-run', 'onboard.yml', '--limit contoso -vvv')
        jobs.append(onboard)
        onboard.check(onboard.status == 'successful', 'the onboarding job did not succeed')
        onboard.check(bool(onboard.changed_tasks()), 'the onboarding job changed nothing')
        puts = policy_puts(emulator, contoso_id, since)
        onboard.check(len(puts) == 1, 'expected one PUT of the policy, found %d' % len(puts))
        selected = emulator.state(contoso_id)['policy']['azureADJoin']['allowedToJoin']
        onboard.check(DEMO_IDS['alex'] in [user.lower() for user in selected['users']], '%s is not in the list' % ALEX)
        onboard.check(DEMO_IDS['it_department'] in [group.lower() for group in selected['groups']], '%s is not in the list' % GROUP)

        again = Job(data, 'onboard-again', 'onboard.yml', '--limit contoso')
        jobs.append(again)
        again.check(again.status == 'successful', 'the second onboarding job did not succeed')
        again.check(again.changed_tasks() == [], 'the second run changed %s' % again.changed_tasks())
        again.check(len(policy_puts(emulator, contoso_id, since)) == 1, 'the second run wrote to the tenant')

        audit = Job(data, 'audit', 'audit.yml', '--check')
        jobs.append(audit)
        audit.check(audit.status == 'successful', 'the audit job did not succeed')
        audit.check(len(policy_puts(emulator, contoso_id, since)) == 1 and policy_puts(emulator, fabrikam_id, since) == [],
                    'the audit wrote to a tenant')
        with open(os.path.join(work, 'reports', 'device_join_audit.json'), encoding='utf-8') as handle:
            report = {row['tenant']: row for row in json.load(handle)['tenants']}
        audit.check(report['contoso']['status'] == 'compliant', 'contoso is %s, not compliant' % report['contoso']['status'])
        audit.check(report['fabrikam']['status'] == 'drifted', 'fabrikam is %s, not drifted' % report['fabrikam']['status'])
        to_add = json.dumps(report['fabrikam']['add'])
        audit.check(ALEX in to_add and GROUP in to_add, 'the report does not list what fabrikam lacks: %s' % to_add)
        table = ReportTable()
        with open(os.path.join(work, 'reports', 'device_join_audit.html'), encoding='utf-8') as handle:
            html_report = handle.read()
        table.feed(html_report)
        audit.check(table.rows.get('fabrikam', {}).get('status') == 'drifted', 'the HTML does not show fabrikam drifted')
        audit.check(ALEX in table.rows['fabrikam']['text'] and GROUP in table.rows['fabrikam']['text'],
                    'the HTML row of fabrikam does not name what to add')
        audit.check(table.rows.get('contoso', {}).get('status') == 'compliant', 'the HTML does not show contoso compliant')
        audit.check(all(secret not in html_report for secret in secrets), 'a client secret appears in the report')

        for job in jobs:
            texts = job.event_texts + [job.stdout]
            for secret in secrets:
                job.check(not any(secret in text for text in texts), 'a client secret appears in the job output')
            job.check(not any(JWT.search(text) for text in texts), 'an access token appears in the job output')
    print('awx jobs: check, run, idempotent run and audit behaved as AWX jobs should; no secret in any event')


if __name__ == '__main__':
    main()
