"""Replace a folder as a whole: write the new content beside it, swap it in on success.

A study's output folder must hold exactly one run's files: nothing from an earlier run
(a matched run's Table 1 next to a results.json that says no matching), and nothing half
written by a run that was killed. :func:`replaced_folder` gives a fresh temporary sibling
to write into; when the block ends without an exception the old folder is renamed away,
the new one renamed into its place and the old one deleted. On an exception the
temporary folder is deleted and the old folder stays as it was. Leftovers of a killed
run (hidden ``.<name>.new-*`` / ``.<name>.old-*`` siblings) are removed by the next run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _leftovers(final: Path) -> list[Path]:
    return sorted(
        p
        for pattern in (f".{final.name}.new-*", f".{final.name}.old-*")
        for p in final.parent.glob(pattern)
    )


@contextmanager
def replaced_folder(final: Path) -> Iterator[Path]:
    """Yield an empty temporary folder; on success it becomes ``final``."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in _leftovers(final):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.new-", dir=final.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = final.parent / f".{final.name}.old-{os.getpid()}"
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def moved(paths: dict[str, Path], tmp: Path, final: Path) -> dict[str, Path]:
    """``paths`` written under ``tmp`` as they are after the swap (under ``final``)."""
    return {k: final / Path(p).relative_to(tmp) for k, p in paths.items()}
