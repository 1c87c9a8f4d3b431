"""``parbench place``: which partition each key value lands in, and the balance.

Users run it with their own host names (or any key values) to choose a
partition count: for N = 2, 4, 8, 16, 32 g_str_hash % N ignores byte order,
so anagram names collide and some counts balance far worse than others.
"""
from __future__ import annotations

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
@click.option("--profile", "profile_name", default=DEFAULT_PROFILE, show_default=True,
              help="Version profile: " + ", ".join(sorted(PROFILES)) + ".")
@click.option("--file", "-f", "file", type=str, default=None,
              help="Read key values from this file, one per line.")
@click.argument("values", nargs=-1)
def place(partitions_text: str | None, key_text: str, profile_name: str, file: str | None,
          values: tuple[str, ...]) -> None:
    """Print the partition of each key VALUE (g_str_hash(value) % N) and the balance.

    Values come from the arguments, from --file, or from stdin (one per line).
    Each line is one unit of traffic: repeat a value to weigh it.  For more than
    one value a per-partition table shows the keys, the expected share of the
    load and the imbalance (busiest partition load / mean load).
    """
    _place(_parse_partitions(partitions_text), key_text, profile_name, file, values)


def _place(partitions: int, key_text: str, profile_name: str, file: str | None,
           values: tuple[str, ...]) -> None:
    n, notes = _effective_partitions(partitions, profile_name)
    try:
        key = compile_template(key_text)
    except TemplateError as exc:
        raise PlaceError(f"--key {key_text!r}: column {exc.column}: {exc.message}") from None
    keys = _read_values(values, file)
    for note in notes:
        click.echo(note, err=True)
    if n == 0:
        click.echo("partitions(0): bypass: every message stays in its source's thread; "
                   "no partition is chosen.")
        return
    if key.literal is not None:
        click.echo(f"note: key {key_text!r} is a literal: every message goes to one partition; "
                   "the values below are hashed as given.")
    elif key.single_name is not None:
        click.echo(f"note: key {key_text!r} is a single macro: its raw value is hashed "
                   "(an unset value hashes as the empty string).")
    else:
        click.echo(f"note: key {key_text!r} is a formatted template: give the formatted strings.")

    hashes = g_str_hash_many(keys)
    parts = (hashes % np.uint32(n)).astype(np.int64)
    width = max(len(_show(k)) for k in keys)
    for value, p in zip(keys, parts.tolist()):
        click.echo(f"{_show(value):<{width}}  {p}")
    if len(keys) < 2:
        return
    load = np.bincount(parts, minlength=n).astype(float)
    distinct: dict[int, list[bytes]] = {i: [] for i in range(n)}
    for value, p in dict(zip(keys, parts.tolist())).items():
        distinct[p].append(value)
    total = load.sum()
    click.echo("")
    click.echo(f"partitions({n}), profile {profile_name}, {len(keys)} values, "
               f"{len(Counter(keys))} distinct")
    click.echo(f"{'partition':>9}  {'keys':>5}  {'load':>7}  {'share':>7}  examples")
    for i in range(n):
        examples = ", ".join(_show(k) for k in distinct[i][:4])
        if len(distinct[i]) > 4:
            examples += ", ..."
        click.echo(f"{i:>9}  {len(distinct[i]):>5}  {int(load[i]):>7}  "
                   f"{load[i] / total:>7.1%}  {examples}")
    mean = total / n
    imbalance = load.max() / mean
    idle = int((load == 0).sum())
    click.echo(f"imbalance: {imbalance:.2f} (busiest partition load / mean load; 1.00 is perfect)"
               + (f"; {idle} idle partition(s)" if idle else ""))
