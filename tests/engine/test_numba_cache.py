"""numba's cache follows the compiled sources: a change to any of them starts a fresh one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from exchange.engine import numba_cache

ROOT = Path(__file__).resolve().parents[2]


def _cache_dir(env: dict[str, str]) -> str:
    code = "import experiments, numba; print(numba.config.CACHE_DIR)"
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True,
                         capture_output=True, text=True)  # fmt: skip
    return out.stdout.strip()


def test_the_cache_is_named_after_the_compiled_sources(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path)
    digest = numba_cache.sources_digest()
    assert _cache_dir(env) == str(tmp_path / "cfx" / "numba" / digest)
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "mine")  # the user's choice wins
    assert _cache_dir(env) == str(tmp_path / "mine")


def test_a_change_to_any_compiled_source_changes_the_digest(tmp_path: Path) -> None:
    names = numba_cache.sources()
    assert {"exchange/engine/kernels.py", "exchange/engine/types.py", "exchange/reasons.py",
            "experiments/market.py", "experiments/population.py"} <= set(names)  # fmt: skip
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    digest = numba_cache.sources_digest(tmp_path)
    assert digest == numba_cache.sources_digest()
    seen = {digest}
    for name in names:
        path = tmp_path / name
        original = path.read_bytes()
        path.write_bytes(original + b"\n# changed\n")
        seen.add(numba_cache.sources_digest(tmp_path))
        path.write_bytes(original)
    assert len(seen) == len(names) + 1
    assert numba_cache.sources_digest(tmp_path) == digest
