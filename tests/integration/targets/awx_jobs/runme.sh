#!/usr/bin/env bash
# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# The onboarding and audit playbooks run as AWX / Automation Controller runs job templates: through ansible-runner,
# with a private data dir (project, inventory, extravars, cmdline) and the credential's environment from the
# collection's custom credential type (docs/awx-credential-type.yml) in env/envvars. awx_jobs.py says what it checks.
# tests/harness writes the emulator's address into integration_config.yml, which ansible-test copies to
# ../../integration_config.yml for a runme.sh target (without loading it).
set -euo pipefail
exec python "$(dirname "$0")/awx_jobs.py" ../../integration_config.yml
