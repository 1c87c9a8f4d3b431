"""DESIGN.md's module table names every module of the package, and nothing
that is not there: a new module without a row (or a row left behind by a
move) fails here."""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FOLDERS = ("parbench", "reference", "harness")
ROW = re.compile(r"^\| `([^`]+\.py)`", re.M)


def modules_on_disk() -> set[str]:
    found = set()
    for folder in FOLDERS:
        for path in (REPO / folder).rglob("*.py"):
            if path.name not in ("__init__.py", "__main__.py"):
                found.add(path.relative_to(REPO).as_posix())
    return found


def modules_in_design(text: str | None = None) -> set[str]:
    text = (REPO / "DESIGN.md").read_text() if text is None else text
    section = text.split("## Modules", 1)[1].split("\n## ", 1)[0]
    return set(ROW.findall(section))


def test_every_module_has_a_row_and_every_row_a_module() -> None:
    on_disk, documented = modules_on_disk(), modules_in_design()
    assert not on_disk - documented, f"modules without a row in DESIGN.md: {sorted(on_disk - documented)}"
    assert not documented - on_disk, f"rows in DESIGN.md for no module: {sorted(documented - on_disk)}"


def test_a_removed_row_is_seen() -> None:
    text = (REPO / "DESIGN.md").read_text()
    without = re.sub(r"^\| `harness/checks\.py`.*\n", "", text, flags=re.M)
    assert without != text
    assert modules_on_disk() - modules_in_design(without) == {"harness/checks.py"}
