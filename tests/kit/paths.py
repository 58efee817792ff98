"""Where things are: the repository, the example application's topology, a test's caches."""

from __future__ import annotations

from pathlib import Path

from controller.aws.models import FOLDER

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "orders" / "topology.yaml"


def cache_sharing(folder: Path, stacks: Path) -> Path:
    """``folder`` made a controller's cache whose deployed stacks are ``stacks`` and whose copies
    of botocore's models (:mod:`controller.aws.models`) are kept beside them, for every worker of
    the run; its failed control regions stay its own (one worker's hung region is not another's)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    (folder / "stacks").symlink_to(stacks, target_is_directory=True)
    models = stacks.parent / FOLDER
    models.mkdir(mode=0o700, exist_ok=True)
    (folder / FOLDER).symlink_to(models, target_is_directory=True)
    return folder
