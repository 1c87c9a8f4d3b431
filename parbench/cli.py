"""The ``parbench`` command: one entry point composing the subcommands.

Subcommands live next to the code they drive (reference/cli.py,
harness/cli.py, ...) and are imported only when used, so a broken or slow
import in one never affects the others and ``parbench --help`` stays fast.
"""
from __future__ import annotations

import importlib
import signal

import click

# name -> (module, attribute, one-line help shown by `parbench --help`)
SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "serve": ("parbench.reference.service", "serve", "Run the reference parallelizer as a TCP service from a syslog-ng config."),
    "place": ("parbench.reference.place", "place", "Print the partition of key values and the expected balance."),
    "config-check": ("parbench.reference.config_check", "config_check", "Check a syslog-ng config against the subset the reference runs."),
    "run": ("parbench.harness.cli", "run", "Run scenario files against implementations; check and report."),
    "check": ("parbench.harness.check_cli", "check", "Check captures of parbench (or loggen) traffic for loss, duplicates and order."),
    "send": ("parbench.harness.send_cli", "send", "Send a scenario's traffic to a running server (loggen's flags and summary)."),
    "collect": ("parbench.harness.collect_cli", "collect_command", "Receive a server's output on a port and write it to a capture file."),
    "compare": ("parbench.harness.compare_cli", "compare", "Compare two result files: noise-aware regression verdicts."),
    "history": ("parbench.harness.compare_cli", "history", "Plot a metric across saved runs."),
    "diff": ("parbench.harness.differential.cli", "diff", "Compare what the reference and real implementations make of a corpus of messages."),
    "install": ("parbench.harness.install", "install", "Install an implementation under test (syslog-ng) privately."),
    "doctor": ("parbench.harness.install", "doctor", "Say which implementations are runnable here and why not."),
}


class LazyGroup(click.Group):
    def invoke(self, ctx: click.Context):
        # The one place a ParbenchError becomes a line on stderr and an exit status.
        from parbench.errors import EXIT_USAGE, ParbenchError
        from parbench.interrupts import signal_of

        try:
            return super().invoke(ctx)
        except ParbenchError as exc:
            name = ctx.invoked_subcommand or ctx.info_name
            click.echo(f"parbench {name}: {exc.one_line()}", err=True)
            ctx.exit(exc.exit_code)
        except click.UsageError as exc:
            # an option click rejected (a Choice, a range): one line too
            if isinstance(exc, click.exceptions.NoArgsIsHelpError):
                raise
            command = f"parbench {ctx.invoked_subcommand}" if ctx.invoked_subcommand else "parbench"
            message = " ".join(exc.format_message().split())
            click.echo(f"{command}: {message} (see {command} --help)", err=True)
            ctx.exit(EXIT_USAGE)
        except KeyboardInterrupt as exc:
            signum = signal_of(exc)
            click.echo(f"interrupted ({signal.Signals(signum).name})", err=True)
            ctx.exit(128 + signum)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in SUBCOMMANDS:
            return None
        module, attr, _ = SUBCOMMANDS[name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, short) for name, (_, _, short) in SUBCOMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="parbench")
def main() -> None:
    """parbench: make syslog-ng / AxoSyslog parallelize() testable and measurable.

    Typical use: `parbench run scenarios/chatty-single-sender.toml` drives the
    reference parallelizer with a scenario, checks exactly-once delivery and
    per-key ordering, and writes a report under reports/.
    """
