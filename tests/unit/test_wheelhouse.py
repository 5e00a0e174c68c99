"""The growbin wheel the nodes install is built from the checkout's sources as they are.

pip builds in the source tree and setuptools copies a module into build/lib only when the
source is newer than the copy there; after this machine's clock went back, stale copies from
an earlier build were packed into the wheel (and into the image) instead of the current code.
The role's own wheelhouse tasks run here against a copy of the checkout whose build/lib holds
such a stale, newer-stamped module.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODULE = Path("growbin") / "core" / "processes.py"
PLAYBOOK = """\
- name: The wheelhouse tasks of app_systemd
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Build the wheelhouse
      ansible.builtin.include_role:
        name: growbin.platform.app_systemd
        tasks_from: wheelhouse.yml
"""


def test_the_wheel_packs_the_sources_not_a_stale_build_copy(tmp_path: Path) -> None:
    source = tmp_path / "checkout"
    source.mkdir()
    shutil.copy2(ROOT / "pyproject.toml", source)
    shutil.copytree(ROOT / "app", source / "app", ignore=shutil.ignore_patterns("__pycache__"))
    stale = source / "build" / "lib" / MODULE
    stale.parent.mkdir(parents=True)
    stale.write_text("STALE = True\n")
    future = time.time() + 6 * 3600
    os.utime(stale, (future, future))

    # The dependency wheels are keyed by pyproject.toml (the role's fingerprint); an existing
    # directory for that key keeps this test from downloading them.
    wheelhouse = tmp_path / "wheelhouse"
    key = hashlib.sha256((ROOT / "pyproject.toml").read_text().rstrip("\n").encode()).hexdigest()
    (wheelhouse / f"deps-{key[:16]}").mkdir(parents=True)
    playbook = tmp_path / "wheelhouse.yml"
    playbook.write_text(PLAYBOOK)
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("ansible-playbook")),
            "-i",
            "localhost,",
            "-c",
            "local",
            str(playbook),
            "-e",
            f"app_systemd_source_dir={source}",
            "-e",
            f"app_systemd_wheelhouse_dir={wheelhouse}",
            "-e",
            '{"app_systemd_wheelhouse_extra_requirements": []}',
            "-e",
            f"ansible_python_interpreter={sys.executable}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert not list((wheelhouse / f"deps-{key[:16]}").iterdir()), "dependency wheels were rebuilt"
    (wheel,) = (wheelhouse / "app").glob("growbin-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packed = archive.read(MODULE.as_posix()).decode()
    assert packed == (ROOT / "app" / MODULE).read_text()
