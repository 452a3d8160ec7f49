"""Run a command where the machine says no: without write permission, on a full disk, on a read-only disk.

Real faults, not mocks: a user namespace (``unshare``) lets an unprivileged test
mount a tiny tmpfs (ENOSPC) or a read-only bind mount (EROFS), and takes away
root's permission override so that ``chmod`` bites (EACCES). Where user
namespaces are not available the test is skipped with the reason.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

UNSHARE = shutil.which("unshare")


def _namespaces_work(flags: list[str]) -> bool:
    if UNSHARE is None:
        return False
    done = subprocess.run([UNSHARE, *flags, "true"], capture_output=True, timeout=30)
    return done.returncode == 0


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, **kwargs)


def without_privileges(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    """``argv`` with file permissions enforced (as root: in a user namespace, where root has no override)."""
    if os.geteuid() != 0:
        return run(argv, **kwargs)
    if not _namespaces_work(["-U"]):
        pytest.skip("running as root and user namespaces are not available: permissions cannot be enforced")
    return run([UNSHARE, "-U", *argv], **kwargs)


def on_small_disk(argv: list[str], mount_point: Path, kilobytes: int, **kwargs) -> subprocess.CompletedProcess:
    """``argv`` with a tmpfs of ``kilobytes`` mounted on ``mount_point`` (a real ENOSPC when it fills)."""
    if not _namespaces_work(["-r", "-m"]):
        pytest.skip("user and mount namespaces are not available: cannot make a small disk")
    mount_point.mkdir(parents=True, exist_ok=True)
    script = (f"mount -t tmpfs -o size={kilobytes}k tmpfs {shlex.quote(str(mount_point))} && "
              f"exec {shlex.join(argv)}")
    return run([UNSHARE, "-r", "-m", "sh", "-c", script], **kwargs)


def on_read_only_disk(argv: list[str], folder: Path, **kwargs) -> subprocess.CompletedProcess:
    """``argv`` with ``folder`` bind-mounted read-only (a real EROFS)."""
    if not _namespaces_work(["-r", "-m"]):
        pytest.skip("user and mount namespaces are not available: cannot make a read-only disk")
    folder.mkdir(parents=True, exist_ok=True)
    quoted = shlex.quote(str(folder))
    script = f"mount --bind {quoted} {quoted} && mount -o remount,bind,ro {quoted} && exec {shlex.join(argv)}"
    return run([UNSHARE, "-r", "-m", "sh", "-c", script], **kwargs)
