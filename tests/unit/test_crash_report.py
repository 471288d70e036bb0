"""A crash in native code leaves the Python stacks in the process's stderr (``config.configure_logging``)."""

from __future__ import annotations

import os
import subprocess
import sys


def test_a_segfault_in_a_cityhub_process_prints_where_it_happened() -> None:
    crash = (
        "from cityhub.config import configure_logging\n"
        "configure_logging()\n"
        "import ctypes\n"
        "def read_address_zero():\n"
        "    ctypes.string_at(0)\n"
        "read_address_zero()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONFAULTHANDLER"}  # only the product may turn it on
    done = subprocess.run([sys.executable, "-c", crash], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode != 0
    assert "Fatal Python error: Segmentation fault" in done.stderr
    assert "read_address_zero" in done.stderr  # the Python frame that made the call
