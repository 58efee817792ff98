"""botocore's data files (service models, endpoint rules, partitions), parsed once per machine.

Called by :mod:`controller.aws.clients` for each botocore session it makes. botocore parses a
service's JSON model in every process that makes a client of it: ``failover status`` parsed 21
files (the endpoints and the models and rules of nine services), about 0.13 s of its 0.6 s of
CPU, and every other CLI call, watcher and test process parsed its own again. Here a parsed file
is kept in the controller's cache as marshal data, which a later process reads back in a fifth
of the time. A copy is named by the Python that wrote it (marshal's format is Python's own) and
by the file's name, size and modification time, as Python names its bytecode: an upgraded
botocore, or an edited model, is parsed afresh, and venvs installed from the same wheel share
the copies. A cache that cannot be read or written costs only the parse.

Each botocore release would leave its copies behind (about 5 MB for what the controller
reads), so writing a file's copy removes that file's other copies last written more than
:data:`PRUNE_AFTER` ago: an old release's, once nothing has parsed it for that long. A venv
that still uses one parses it again, once, and its copy is fresh from then on.

botocore parses into ``OrderedDict`` (from before dicts kept their order); the copies hold plain
dicts in the same order, and botocore reads its data only as mappings.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import marshal
import os
import stat
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import botocore.loaders
import botocore.session

from controller.contract import ENV_LAMBDA_FUNCTION, cache_folder

log = logging.getLogger(__name__)

#: The copies' folder in the controller's cache.
FOLDER = "botocore"
#: The forms botocore reads a data file in, in its order: plain JSON, else gzipped JSON.
SUFFIXES = (".json", ".json.gz")
#: Seconds after which a copy that another is written beside is removed (a week).
PRUNE_AFTER = 7 * 24 * 3600.0
#: The names copies had before a copy's name began with its file's digest (32 hex digits).
UNSORTED = "[0-9a-f]" * 32 + ".marshal"


class ModelCache(botocore.loaders.JSONFileLoader):
    """botocore's JSON file loader that keeps each file it parses in ``folder`` for the next
    process (default: :data:`FOLDER` in :func:`controller.contract.cache_folder`).

    >>> import tempfile
    >>> path = botocore.loaders.Loader.BUILTIN_DATA_PATH + "/partitions"
    >>> cache = ModelCache(Path(tempfile.mkdtemp()))
    >>> cache.load_file(path) == botocore.loaders.JSONFileLoader().load_file(path)
    True
    >>> len(list(cache.folder.iterdir())), cache.load_file(path) == cache.load_file(path)
    (1, True)
    """

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder if folder is not None else cache_folder() / FOLDER

    def load_file(self, file_path: str) -> Any:
        """The data of ``file_path`` (without its suffix), or None when there is no such file."""
        for suffix in SUFFIXES:
            source = file_path + suffix
            try:
                found = os.stat(source)
            except OSError:
                continue
            if not stat.S_ISREG(found.st_mode):
                continue
            copy = self.folder / f"{_name(source, found)}.marshal"
            try:
                # The user's own cache, as trusted as the ~/.aws/models botocore reads (S302);
                # not marshal.load: it reads a file in small pieces, slower than the JSON
                return marshal.loads(copy.read_bytes())  # noqa: S302
            except FileNotFoundError:
                pass
            except (OSError, EOFError, ValueError, TypeError) as exc:  # torn or foreign: parse
                log.debug("model copy %s unreadable: %s", copy, exc)
            data = self.parse(source)
            self._keep(copy, data)
            self._prune(copy)
            return data
        return None

    @staticmethod
    def parse(source: str) -> Any:
        """``source`` parsed as botocore parses it (UTF-8 JSON, gzipped when it ends ``.gz``)."""
        opener: Any = gzip.open if source.endswith(".gz") else open
        with opener(source, "rb") as raw:
            return json.loads(raw.read().decode("utf-8"))

    def _keep(self, copy: Path, data: Any) -> None:
        """Write ``data`` to ``copy`` whole or not at all (readers never see half a file)."""
        temp = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, temp = tempfile.mkstemp(dir=self.folder, prefix=".model-")
            with os.fdopen(fd, "wb") as out:
                marshal.dump(data, out)
            os.replace(temp, copy)
        except (OSError, ValueError) as exc:  # read-only, full, or not marshallable: parse again
            log.debug("model copy %s not kept: %s", copy, exc)
            if temp is not None:
                Path(temp).unlink(missing_ok=True)

    def _prune(self, kept: Path) -> None:
        """Remove the copies of ``kept``'s file, this Python's, that were last written more
        than :data:`PRUNE_AFTER` ago (another process may still read one: it has it open, or
        parses again); and as old copies named as before copies had a file's digest in their
        names (:data:`UNSORTED`), whose file no name tells."""
        family = kept.name.partition("-")[0]
        old = time.time() - PRUNE_AFTER
        try:
            for pattern in (f"{family}-*.marshal", UNSORTED):
                for copy in self.folder.glob(pattern):
                    if copy != kept and copy.stat().st_mtime < old:
                        copy.unlink(missing_ok=True)
        except OSError as exc:  # unreadable folder, or a copy removed meanwhile
            log.debug("model copies of %s not pruned: %s", family, exc)


def _name(source: str, found: os.stat_result) -> str:
    """A copy's name: a digest of this Python and the file's last three path parts
    (``lambda/2015-03-31/service-2.json.gz``), the copies of one file for one Python, then a
    digest of its size and modification time, the copy of one version of it.

    >>> import os
    >>> a = _name("/x/lambda/2015-03-31/service-2.json", os.stat_result((0,) * 6 + (1, 0, 2, 0)))
    >>> b = _name("/y/lambda/2015-03-31/service-2.json", os.stat_result((0,) * 6 + (9, 0, 2, 0)))
    >>> a.partition("-")[0] == b.partition("-")[0], a == b
    (True, False)
    """
    tail = "/".join(Path(source).parts[-3:])
    family = hashlib.sha256(f"{sys.version}\0{tail}".encode()).hexdigest()[:16]
    version = hashlib.sha256(f"{found.st_size}\0{found.st_mtime_ns}".encode()).hexdigest()[:16]
    return f"{family}-{version}"


def use_model_cache(session: botocore.session.Session) -> botocore.session.Session:
    """Make ``session`` read botocore's data through a :class:`ModelCache`, from the same
    search paths (``AWS_DATA_PATH`` included) as botocore's own loader; ``session`` back.

    Not in a Lambda function (a watcher): its environment keeps nothing from one cold start to
    the next, so it parses as botocore does, on AWS and in the sandbox that rehearses it."""
    if os.environ.get(ENV_LAMBDA_FUNCTION):
        return session
    loader = botocore.loaders.create_loader(session.get_config_variable("data_path"))
    loader.file_loader = ModelCache()
    session.register_component("data_loader", loader)
    return session
