"""Write hdml_lite.colab.SETUP_CELL into the first code cell of every notebook (and solution).

    python scripts/sync_setup_cell.py           # rewrite the notebooks whose set-up cell differs
    python scripts/sync_setup_cell.py --check   # exit 1 if one differs (nothing written)

One source for the set-up cell: tests/test_colab_setup.py runs SETUP_CELL against a fake /content.
Each notebook is read, changed and written back at once (a temporary file, then a rename).
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from hdml_lite.colab import SETUP_CELL

REPO = Path(__file__).resolve().parents[1]


def notebooks() -> list[Path]:
    return sorted((REPO / "notebooks").glob("*.ipynb")) + sorted((REPO / "notebooks" / "solutions").glob("*.ipynb"))


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    stale = []
    for path in notebooks():
        nb = json.loads(path.read_text(encoding="utf-8"))
        cell = next(c for c in nb["cells"] if c["cell_type"] == "code")
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        if source == SETUP_CELL:
            continue
        stale.append(path.relative_to(REPO))
        if "--check" in argv:
            continue
        cell["source"], cell["outputs"], cell["execution_count"] = SETUP_CELL.splitlines(keepends=True), [], None
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")       # nbformat's layout: indent 1, sorted keys
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    print(("differ: " if "--check" in argv else "rewritten: ") + (", ".join(map(str, stale)) or "none"))
    return int(bool(stale) and "--check" in argv)


if __name__ == "__main__":
    sys.exit(main())
