"""The platform a Lambda bundle is built for: the function's declared runtime and architecture.

Used by :mod:`infra.bundle` (and declared by :mod:`infra.watchers` on its function): a
distribution installed on the deployer's machine runs in the function only when one of its
wheel's tags is one the target accepts; the others (compiled for another Python, OS or
processor: pydantic-core or PyYAML built on macOS, on arm64, for Python 3.13) are fetched again
for the target with the pip arguments :meth:`Target.pip_arguments` gives. The target is
manylinux2014 (glibc 2.17), the platform AWS's packaging guide names for every Lambda Python
runtime, whose Amazon Linux 2 (glibc 2.26) and 2023 (2.34) both run it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from packaging.tags import Tag, compatible_tags, cpython_tags, parse_tag


class Architecture(StrEnum):
    """A Lambda function's instruction set (its ``architectures``), as Lambda spells it."""

    X86_64 = "x86_64"
    ARM64 = "arm64"


#: The processor each architecture is in wheel tags and in ``platform_machine`` markers.
MACHINES = {Architecture.X86_64: "x86_64", Architecture.ARM64: "aarch64"}
#: The newest glibc a manylinux2014 wheel may need: 2.17.
GLIBC_MINOR = 17
_RUNTIME = re.compile(r"python3\.(\d{1,2})")


@dataclass(frozen=True)
class Target:
    """A Lambda Python runtime (``python3.12``) on an architecture: where a bundle runs.

    Examples
    --------
    >>> t = Target("python3.12", Architecture.ARM64)
    >>> t.platform, t.python_version, t.abi, t.slug
    ('manylinux2014_aarch64', '3.12', 'cp312', 'python3.12-arm64')
    >>> t.runs(["cp312-cp312-manylinux_2_17_aarch64"]), t.runs(["cp312-cp312-macosx_11_0_arm64"])
    (True, False)
    >>> Target("python3")
    Traceback (most recent call last):
    ...
    ValueError: runtime 'python3': a Lambda Python runtime is python3.N
    """

    runtime: str
    architecture: Architecture = Architecture.X86_64

    def __post_init__(self) -> None:
        if _RUNTIME.fullmatch(self.runtime) is None:
            raise ValueError(f"runtime {self.runtime!r}: a Lambda Python runtime is python3.N")
        object.__setattr__(self, "architecture", Architecture(self.architecture))

    @property
    def python(self) -> tuple[int, int]:
        """The runtime's Python version as ``(3, N)``."""
        match = _RUNTIME.fullmatch(self.runtime)
        assert match is not None  # checked at construction
        return 3, int(match.group(1))

    @property
    def python_version(self) -> str:
        """``3.N``, as pip's ``--python-version`` takes it."""
        return "{}.{}".format(*self.python)

    @property
    def abi(self) -> str:
        """The CPython ABI tag of the runtime (``cp312``)."""
        return "cp{}{}".format(*self.python)

    @property
    def machine(self) -> str:
        """The processor as wheels and markers name it (``aarch64`` for arm64)."""
        return MACHINES[self.architecture]

    @property
    def platform(self) -> str:
        """The platform tag pip is asked for (``manylinux2014_x86_64``)."""
        return f"manylinux2014_{self.machine}"

    @property
    def slug(self) -> str:
        """The target in a file name: runtime and architecture (``python3.12-arm64``)."""
        return f"{self.runtime}-{self.architecture.value}"

    def platforms(self) -> list[str]:
        """Every platform tag a manylinux2014 machine of this processor runs, newest first."""
        m = self.machine
        out = [f"manylinux_2_{minor}_{m}" for minor in range(GLIBC_MINOR, 4, -1)]
        return [*out, f"manylinux2014_{m}", f"manylinux2010_{m}", f"manylinux1_{m}"]

    def tags(self) -> frozenset[Tag]:
        """Every wheel tag this target runs (CPython, abi3, pure)."""
        return _tags(self.python, self.abi, tuple(self.platforms()))

    def runs(self, wheel_tags: Iterable[str]) -> bool:
        """Whether a wheel with these tags (a ``WHEEL`` file's ``Tag:`` values) runs here."""
        accepted = self.tags()
        return any(tag in accepted for text in wheel_tags for tag in parse_tag(text))

    def environment(self) -> dict[str, str]:
        """The environment markers evaluate to in the function (PEP 508)."""
        version = self.python_version
        return {
            "implementation_name": "cpython",
            "implementation_version": f"{version}.0",
            "os_name": "posix",
            "platform_machine": self.machine,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": "Linux",
            "platform_version": "",
            "python_full_version": f"{version}.0",
            "python_version": version,
            "sys_platform": "linux",
        }

    def pip_arguments(self, folder: Path, pins: Sequence[str]) -> list[str]:
        """``pip install`` arguments putting the target's wheels of ``pins`` into ``folder``.

        Wheels only (nothing is compiled on the deployer), no dependencies (``pins`` is the
        whole closure, versions as installed here), no byte code (the runtime's Python compiles).
        """
        return [
            "install",
            "--target",
            str(folder),
            "--no-deps",
            "--only-binary=:all:",
            "--no-compile",
            "--platform",
            self.platform,
            "--python-version",
            self.python_version,
            "--implementation",
            "cp",
            "--abi",
            self.abi,
            *pins,
        ]


@functools.cache
def _tags(python: tuple[int, int], abi: str, platforms: tuple[str, ...]) -> frozenset[Tag]:
    return frozenset(
        [
            *cpython_tags(python, [abi], platforms),
            *compatible_tags(python, f"cp{python[0]}{python[1]}", platforms),
        ]
    )
