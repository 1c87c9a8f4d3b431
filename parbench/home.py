"""Where parbench keeps what it installs and builds (the data home).

``$PARBENCH_HOME`` when set, else ``$XDG_DATA_HOME/parbench``, else
``~/.local/share/parbench``; never inside the installed package, so a plain
``pip install .`` and an editable install behave alike.
"""
from __future__ import annotations

import os
from pathlib import Path

ENV_HOME = "PARBENCH_HOME"


def data_home() -> Path:
    explicit = os.environ.get(ENV_HOME)
    if explicit:
        return Path(explicit).expanduser().absolute()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "parbench"
