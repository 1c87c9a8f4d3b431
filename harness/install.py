"""``parbench install KIND`` and ``parbench doctor``, for every registered
implementation kind.

``install`` offers the install command of each kind that has one
(``TargetKind.install_command``; today ``syslog-ng``); ``doctor`` asks each
kind whether it runs here (``TargetKind.availability``) and says where the
data home is.  Neither knows any kind by name.
"""
from __future__ import annotations

import click

from parbench.harness.targets.registry import kinds, parse_impls
from parbench.home import ENV_HOME, data_home


class _InstallGroup(click.Group):
    """One subcommand per kind that can install itself."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [kind.name for kind in kinds() if kind.install_command() is not None]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        for kind in kinds():
            if kind.name == name:
                return kind.install_command()
        return None


@click.group("install", cls=_InstallGroup)
def install() -> None:
    """Install an implementation under test privately, into the data home
    ($PARBENCH_HOME, else $XDG_DATA_HOME/parbench, else ~/.local/share/parbench);
    nothing system-wide."""


@click.command("doctor")
@click.option("--impl", "impls", multiple=True, metavar="SPEC",
              help="Check this implementation spec (e.g. syslog-ng:/opt/axosyslog) instead of its bare kind. Repeatable.")
@click.option("--syslog-ng", "syslog_ng_path", default=None, metavar="PATH",
              help="A syslog-ng / AxoSyslog binary (or install prefix) to check: the same as --impl syslog-ng:PATH.")
def doctor(impls: tuple[str, ...], syslog_ng_path: str | None) -> None:
    """Say which implementations are runnable here and why not."""
    specs = parse_impls([*impls, *([f"syslog-ng:{syslog_ng_path}"] if syslog_ng_path else [])])
    click.echo(f"data home: {data_home()} (private installs; set ${ENV_HOME} to move it)")
    for kind in kinds():
        asked = [spec for spec in specs if spec.kind == kind.name]
        for spec in asked or [None]:
            found = kind.availability(spec)
            state = "runnable" if found.runnable else "not runnable"
            click.echo(f"{spec.text if spec else kind.name}: {state}" + (f", {found.summary}" if found.summary else ""))
            for line in found.details:
                click.echo(f"  - {line}")
