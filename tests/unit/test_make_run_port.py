"""`make run` says a port is taken before its minutes of set-up, not after them."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_make_run_refuses_a_taken_port_before_installing_anything(tmp_path: Path) -> None:
    """A first `make run` on a machine where port 8000 answers already spent three minutes on pip, npm, the
    migrations and the demo seed before `cityhub serve` refused the port; now it stops at once, naming the variable
    that chooses another."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        (tmp_path / "file").write_text("")
        venv = tmp_path / "file" / "venv"  # a virtualenv cannot be made there: the old order failed fast at it
        result = subprocess.run(
            ["make", "--no-print-directory", "run", f"PORT={port}", "HOST=127.0.0.1", f"VENV={venv}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode != 0
    assert f"error: port {port} on 127.0.0.1 is already in use: make run PORT=N" in result.stderr
    assert "python3 -m venv" not in result.stdout and "pip install" not in result.stdout  # nothing was set up


def test_a_free_port_passes_the_check() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: nothing answers
        result = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "port-free"), "127.0.0.1", str(port)],
            capture_output=True,
            text=True,
        )
    assert result.returncode == 0 and result.stderr == ""
