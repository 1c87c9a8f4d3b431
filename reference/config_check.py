"""``parbench config-check FILE``: would the reference run this syslog-ng config?

Prints a one-line summary per log path, or the one-line ``ConfigError``
(``FILE:LINE:COLUMN: ...``, exit status 2, through the ``parbench`` command's
one error handler).  Warnings (a clamped partition count, a definition no log
path uses) go to stderr.
"""
from __future__ import annotations

import click

from parbench.reference.config import describe, load_config
from parbench.reference.profiles import DEFAULT_PROFILE, PROFILES, get_profile


@click.command("config-check")
@click.argument("config_path", metavar="FILE")
@click.option("--profile", type=click.Choice(sorted(PROFILES)), default=DEFAULT_PROFILE, show_default=True,
              help="Which real implementation's parallelize() options to accept.")
def config_check(config_path: str, profile: str) -> None:
    """Check a syslog-ng configuration FILE against the subset the reference runs."""
    cfg = load_config(config_path, get_profile(profile))
    click.echo("\n".join(describe(cfg)))
