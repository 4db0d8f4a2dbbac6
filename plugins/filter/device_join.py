# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters of the device_join role and the audit playbook (documented in the .yml file named after each)."""

from __future__ import annotations

import typing as t
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.entra.autopilot.plugins.plugin_utils._audit_report import build_report, render
from ansible_collections.entra.autopilot.plugins.plugin_utils._join_summary import merge_requests, not_applicable, summarize


def device_join_summary(before: t.Any, policy: t.Any = None, member: t.Any = None, coverage: t.Any = None,
                        scenario: str = '', reason: str = '', **context: t.Any) -> dict[str, t.Any]:
    """What a run of the device_join role changed, or would change; ``reason`` alone means the scenario does not apply."""
    if reason:
        return not_applicable(scenario, reason, **context)
    return summarize(before, policy, member, coverage, scenario=scenario, **context)


def device_join_merge(requests: t.Any) -> dict[str, t.Any]:
    """The union of what the hosts of one tenant ask for, and the settings they disagree on."""
    if not isinstance(requests, list) or not all(isinstance(request, Mapping) for request in requests):
        raise AnsibleFilterError('device_join_merge expects a list of dicts (the device_join_request of each host)')
    return merge_requests(requests)


def device_join_report(entries: t.Any, output_format: str = 'dict', generated: str = '', secrets: t.Any = None,
                       title: str = 'Microsoft Entra device join audit') -> t.Any:
    """The audit report of ``entries`` ({host, tenant_id, result} or {host, tenant_id, error}) in one format."""
    if not isinstance(entries, (list, Mapping)):
        raise AnsibleFilterError('device_join_report expects a list of tenant entries or a dict of host to entry, got %s'
                                 % type(entries).__name__)
    try:
        return render(build_report(entries, generated=generated, secrets=secrets, title=title), output_format)
    except ValueError as error:
        raise AnsibleFilterError('device_join_report: %s' % error) from error


class FilterModule:
    """The entra.autopilot device join filters."""

    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {
            'device_join_merge': device_join_merge,
            'device_join_summary': device_join_summary,
            'device_join_report': device_join_report,
        }
