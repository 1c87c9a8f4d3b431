"""``parbench place``: which partition each key value lands in, and the balance.

Users run it with their own host names (or any key values) to choose a
partition count: for N = 2, 4, 8, 16, 32 g_str_hash % N ignores byte order,
so anagram names collide and some counts balance far worse than others.
"""
from __future__ import annotations

import json
import sys
from collections import Counter

import click
import numpy as np

from parbench.errors import UsageError
from parbench.reference.partition import g_str_hash_many
from parbench.reference.profiles import DEFAULT_PROFILE, PROFILES, get_profile, limit_partitions
from parbench.reference.template import TemplateError, compile_template


class PlaceError(UsageError):
    """Bad values, options or key for ``parbench place`` (exit status 2)."""


def _show(value: bytes) -> str:
    return value.decode("utf-8", "backslashreplace")


def _read_values(values: tuple[str, ...], file: str | None) -> list[bytes]:
    if values and file:
        raise PlaceError("give values as arguments or with --file, not both")
    if values:
        return [v.encode("utf-8", "surrogateescape") for v in values]
    if file:
        try:
            with open(file, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise PlaceError(f"{file}: cannot read: {exc.strerror or exc}") from None
        source = file
    else:
        if sys.stdin.isatty():
            click.echo("reading key values from stdin, one per line; end with Ctrl-D", err=True)
        data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
        source = "stdin"
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
    if not lines:
        raise PlaceError(f"{source}: no values (expected one key value per line)")
    return lines


def _parse_partitions(text: str | None) -> int:
    # Parsed here rather than by click so that every error is one line.
    if text is None:
        raise PlaceError("--partitions N is required (N = partitions() of parallelize(); 0 = bypass)")
    try:
        return int(text)
    except ValueError:
        raise PlaceError(f"--partitions {text!r}: expected a whole number") from None


def _effective_partitions(partitions: int, profile_name: str) -> tuple[int, list[str]]:
    try:
        profile = get_profile(profile_name)
    except ValueError as exc:
        raise PlaceError(f"--profile: {exc}") from None
    notes: list[str] = []
    try:
        partitions, warning = limit_partitions(profile, partitions)
    except ValueError as exc:
        raise PlaceError(f"--partitions {partitions}: {exc}") from None
    if warning:
        notes.append(f"warning: {warning}")
    return partitions, notes


@click.command("place")
@click.option("--partitions", "-n", "partitions_text", metavar="N", default=None,
              help="partitions(N) of parallelize(); 0 means bypass.  Required.")
@click.option("--key", "key_text", default="$HOST", show_default=True,
              help="The partition-key() template the values are expansions of.")
@click.option("--profile", "profile_name", type=click.Choice(sorted(PROFILES)), default=DEFAULT_PROFILE,
              show_default=True, help="Version profile (limits the partition count as that version does).")
@click.option("--file", "-f", "file", type=str, default=None,
              help="Read key values from this file, one per line.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the placement and the per-partition table as JSON.")
@click.argument("values", nargs=-1)
def place(partitions_text: str | None, key_text: str, profile_name: str, file: str | None, as_json: bool,
          values: tuple[str, ...]) -> None:
    """Print the partition of each key VALUE (g_str_hash(value) % N) and the balance.

    Values come from the arguments, from --file, or from stdin (one per line).
    Each line is one unit of traffic: repeat a value to weigh it.  For more than
    one value a per-partition table shows the keys, the expected share of the
    load and the imbalance (busiest partition load / mean load).
    """
    placement = _placement(_parse_partitions(partitions_text), key_text, profile_name, file, values)
    if as_json:
        click.echo(json.dumps(placement, indent=2))
    else:
        _print(placement)


def _key_kind(key) -> str:
    if key.literal is not None:
        return "literal"
    return "single" if key.single_name is not None else "template"


def _placement(partitions: int, key_text: str, profile_name: str, file: str | None,
               values: tuple[str, ...]) -> dict:
    """Everything ``place`` says, as data (what ``--json`` prints)."""
    n, notes = _effective_partitions(partitions, profile_name)
    try:
        key = compile_template(key_text)
    except TemplateError as exc:
        raise PlaceError(f"--key {key_text!r}: column {exc.column}: {exc.message}") from None
    keys = _read_values(values, file)
    out = {"partitions": n, "requested_partitions": partitions, "profile": profile_name, "key": key_text,
           "key_kind": _key_kind(key), "notes": notes, "values": [], "table": None, "imbalance": None,
           "idle_partitions": None}
    if n == 0:
        out["values"] = [{"value": _show(k), "partition": None} for k in keys]
        return out
    parts = (g_str_hash_many(keys) % np.uint32(n)).astype(np.int64)
    out["values"] = [{"value": _show(k), "partition": p} for k, p in zip(keys, parts.tolist())]
    if len(keys) < 2:
        return out
    load = np.bincount(parts, minlength=n).astype(float)
    distinct: dict[int, list[bytes]] = {i: [] for i in range(n)}
    for value, p in dict(zip(keys, parts.tolist())).items():
        distinct[p].append(value)
    total = load.sum()
    out["distinct_values"] = len(Counter(keys))
    out["table"] = [{"partition": i, "keys": len(distinct[i]), "load": int(load[i]), "share": load[i] / total,
                     "examples": [_show(k) for k in distinct[i][:4]]} for i in range(n)]
    out["imbalance"] = float(load.max() / (total / n))
    out["idle_partitions"] = int((load == 0).sum())
    return out


def _print(placement: dict) -> None:
    for note in placement["notes"]:
        click.echo(note, err=True)
    n, key_text, kind = placement["partitions"], placement["key"], placement["key_kind"]
    if n == 0:
        click.echo("partitions(0): bypass: every message stays in its source's thread; "
                   "no partition is chosen.")
        return
    if kind == "literal":
        click.echo(f"note: key {key_text!r} is a literal: every message goes to one partition; "
                   "the values below are hashed as given.")
    elif kind == "single":
        click.echo(f"note: key {key_text!r} is a single macro: its raw value is hashed "
                   "(an unset value hashes as the empty string).")
    else:
        click.echo(f"note: key {key_text!r} is a formatted template: give the formatted strings.")
    values = placement["values"]
    width = max(len(v["value"]) for v in values)
    for v in values:
        click.echo(f"{v['value']:<{width}}  {v['partition']}")
    table = placement["table"]
    if table is None:
        return
    click.echo("")
    click.echo(f"partitions({n}), profile {placement['profile']}, {len(values)} values, "
               f"{placement['distinct_values']} distinct")
    click.echo(f"{'partition':>9}  {'keys':>5}  {'load':>7}  {'share':>7}  examples")
    for row in table:
        examples = ", ".join(row["examples"]) + (", ..." if row["keys"] > 4 else "")
        click.echo(f"{row['partition']:>9}  {row['keys']:>5}  {row['load']:>7}  "
                   f"{row['share']:>7.1%}  {examples}")
    idle = placement["idle_partitions"]
    click.echo(f"imbalance: {placement['imbalance']:.2f} (busiest partition load / mean load; 1.00 is perfect)"
               + (f"; {idle} idle partition(s)" if idle else ""))
