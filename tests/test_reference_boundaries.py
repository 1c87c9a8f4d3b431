"""What the reference package promises about itself: its errors belong to
the one error tree, it never imports the harness, and its comments point at
the project's own docs, not at paths or issue numbers outside it."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from parbench.errors import EXIT_USAGE, UsageError
from parbench.reference.config import ConfigError
from parbench.reference.engine import EngineError
from parbench.reference.message import FramingError
from parbench.reference.place import PlaceError
from parbench.reference.template import TemplateError

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "reference"


@pytest.mark.parametrize("cls", [ConfigError, TemplateError, PlaceError, FramingError, EngineError])
def test_reference_errors_are_usage_errors(cls):
    assert issubclass(cls, UsageError) and cls.exit_code == EXIT_USAGE


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_reference_module_imports_the_harness():
    offenders = {p.name: sorted(n for n in _imports(p) if "harness" in n)
                 for p in sorted(REFERENCE.glob("*.py"))}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_importing_every_reference_module_loads_no_harness_module():
    modules = [f"parbench.reference.{p.stem}" for p in sorted(REFERENCE.glob("*.py")) if p.stem != "__init__"]
    code = ("import importlib, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "print(sorted(m for m in sys.modules if m.startswith('parbench.harness')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


OUTSIDE = re.compile(r"\.\./shared|/work/|\bissues? #?[0-9]+", re.IGNORECASE)


def test_reference_cites_no_path_or_issue_outside_the_project():
    hits = [f"{p.name}:{i}: {line.strip()}"
            for p in sorted(REFERENCE.glob("*.py"))
            for i, line in enumerate(p.read_text().splitlines(), 1) if OUTSIDE.search(line)]
    assert hits == []


def test_docs_sections_the_reference_cites_exist():
    doc = (REPO / "docs" / "semantics.md").read_text()
    headings = set(re.findall(r"^#+ (.+)$", doc, re.M))
    cited = {m for p in REFERENCE.glob("*.py")
             for m in re.findall(r'docs/semantics\.md,?\s+"([^"]+)"', p.read_text())}
    assert cited, "the reference should point at docs/semantics.md sections"
    assert cited <= headings, sorted(cited - headings)
