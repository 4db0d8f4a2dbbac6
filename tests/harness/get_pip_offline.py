# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Stand-in for ansible-test's get-pip bootstrap script, for machines that only reach PyPI.

ansible-test creates its virtual environments without pip and then runs a get-pip script that it downloads from
ci-files.testing.ansible.com (unreachable here) and caches as ~/.ansible/test/cache/get_pip_<version>.py.
The harness puts this file there instead. It installs pip from the interpreter's own ensurepip wheel and then
installs the requested packages (for example ``pip==25.2``) from the package index, like get-pip does.
"""

from __future__ import annotations

import ensurepip
import os
import subprocess
import sys

# options only get-pip knows; pip itself would reject them
GET_PIP_ONLY_OPTIONS = {'--no-setuptools', '--no-wheel'}


def main() -> None:
    pip_args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_OPTIONS]
    # ensurepip sets PIP_CONFIG_FILE=/dev/null in os.environ, which hides the machine's pip.conf (its cert= and
    # index settings) from the pip run below, so that run gets the environment as it was before.
    environment = dict(os.environ)
    ensurepip.bootstrap(upgrade=True)
    if pip_args:
        subprocess.run([sys.executable, '-m', 'pip', 'install', *pip_args], env=environment, check=True)


if __name__ == '__main__':
    main()
