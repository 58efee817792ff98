"""A bench script (``bench/<name>.py``) imported as a module, for tests of its arithmetic."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from tests.kit.paths import REPO


def load(name: str) -> ModuleType:
    """``bench/<name>.py`` as the module ``bench_<name>`` (the bench's ``main`` is not run)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module
