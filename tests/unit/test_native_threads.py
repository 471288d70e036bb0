"""Long-running processes keep one native thread per BLAS/OpenMP pool (``serving.limit_native_threads``)."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = (
    "import numpy, sklearn.svm\n"
    "from threadpoolctl import threadpool_info\n"
    "from cityhub.serving import limit_native_threads\n"
    "limit_native_threads()\n"
    "print(sorted({p['num_threads'] for p in threadpool_info()}))\n"
)


def _threads(**env: str) -> str:
    clean = {
        k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, env={**clean, **env}, check=True
    )
    return done.stdout.strip()


def test_native_pools_get_one_thread_unless_the_operator_chose() -> None:
    assert _threads() == "[1]"
    chosen = _threads(OPENBLAS_NUM_THREADS="2", OMP_NUM_THREADS="2")
    assert chosen != "[1]" or os.cpu_count() == 1  # the operator's choice stands (this machine has two cores)
