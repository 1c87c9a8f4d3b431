"""A whole diff: corpus sections grouped by configuration, the reference run
once per version profile the real implementations need, each real
implementation run once per configuration, every section compared.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from parbench.errors import UsageError
from parbench.harness.differential.compare import Comparison, compare_runs
from parbench.harness.differential.corpus import Corpus, CorpusError, Section
from parbench.harness.differential.prepare import PreparedConfig, prepare_config
from parbench.harness.differential.runner import MIN_LOG_MSG_SIZE, ImplRun, run_implementation
from parbench.harness.targets import registry
from parbench.harness.targets.kind import ImplSpec
from parbench.reference.config_lexer import ConfigError
from parbench.reference.config_model import Location
from parbench.reference.profiles import DEFAULT_PROFILE, get_profile

Progress = Callable[[str], None]


@dataclass
class ConfigGroup:
    """Sections that run with one configuration file."""

    config: Path
    sections: list[Section]


def config_groups(corpus: Corpus, sections: Sequence[str] | None, config: Path | None) -> list[ConfigGroup]:
    """The runs a diff needs: every chosen section with ``config``, or, when
    none is given, each with the configuration its section names."""
    chosen = corpus.select(list(sections or []))
    if config is not None:
        return [ConfigGroup(Path(config), chosen)]
    groups: dict[Path, ConfigGroup] = {}
    for section in chosen:
        if section.config is None:
            raise CorpusError(f"{corpus.path}: section [{section.name}] names no config=FILE; "
                              "give the configuration on the command line: parbench diff CONF ...")
        groups.setdefault(section.config, ConfigGroup(section.config, [])).sections.append(section)
    return list(groups.values())


def _read_config(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(Location(str(path), 0, 0),
                          f"cannot read the configuration file ({reason}); expected a readable UTF-8 file") from None


def _source_index(prepared: PreparedConfig, source: str | None) -> int:
    if source is None:
        return 0
    for index, spot in enumerate(prepared.sources):
        if spot.source == source:
            return index
    names = sorted({spot.source for spot in prepared.sources if spot.source})
    raise UsageError(f"{prepared.file}: no source named {source!r}; named sources: {', '.join(names) or 'none'}")


def _check_sizes(prepared: PreparedConfig) -> None:
    default = prepared.config.options.log_msg_size
    for path in prepared.config.log_paths:
        for src in path.sources:
            for drv in src.drivers:
                size = drv.log_msg_size if drv.log_msg_size is not None else default
                if size < MIN_LOG_MSG_SIZE:
                    raise ConfigError(drv.loc, f"log-msg-size({size}) is too small for parbench diff's "
                                               f"end-of-case line; expected at least {MIN_LOG_MSG_SIZE}")


def check_impls(specs: Sequence[str | ImplSpec]) -> list[ImplSpec]:
    """The specs of the real implementations; UsageError for a kind that
    cannot run a configuration file, ImplSpecError for a bad spec."""
    parsed = registry.parse_impls(specs)
    for spec in parsed:
        kind = registry.kind_of(spec)
        if not kind.runs_config_text:
            able = [k.name for k in registry.kinds() if k.runs_config_text and k.name != "reference"]
            raise UsageError(f"--impl {spec.text}: {kind.name} implementations do not run a configuration file; "
                             f"expected one of: {', '.join(able)}")
        if kind.name == "reference":
            raise UsageError(f"--impl {spec.text}: the reference is always run; expected a real implementation")
    if not parsed:
        raise UsageError("no --impl given; expected at least one real implementation, e.g. --impl syslog-ng")
    return parsed


def run_diff(groups: Sequence[ConfigGroup], specs: Sequence[ImplSpec], workdir: Path,
             source: str | None = None, progress: Progress | None = None) -> list[Comparison]:
    """Run every group in the reference and in every implementation of
    ``specs``; one Comparison per (section, implementation)."""
    say = progress or (lambda _line: None)
    profiles: dict[str, str] = {}
    for spec in specs:
        probe = registry.get_target(spec)
        kind = registry.kind_of(spec)
        profiles[spec.text] = (probe.reference_profile() if kind.gives_reference_profile else None) or DEFAULT_PROFILE
    comparisons: list[Comparison] = []
    for number, group in enumerate(groups):
        text = _read_config(group.config)
        cases = [case for section in group.sections for case in section.cases]
        prepared: dict[str, PreparedConfig] = {}
        for profile in dict.fromkeys(profiles.values()):
            prepared[profile] = prepare_config(text, str(group.config), get_profile(profile))
            _check_sizes(prepared[profile])
        first = next(iter(prepared.values()))
        index = _source_index(first, source)
        references: dict[str, ImplRun] = {}
        for profile, config in prepared.items():
            label = f"reference {profile}"
            say(f"{group.config.name}: {label}, {len(cases)} cases")
            references[profile] = run_implementation(
                registry.get_target("reference", profile=profile), label, config, cases,
                workdir / f"{number}-reference-{profile}", index)
        for which, spec in enumerate(specs):
            label = registry.full_label(spec)
            say(f"{group.config.name}: {label}, {len(cases)} cases")
            run = run_implementation(registry.get_target(spec), label, prepared[profiles[spec.text]], cases,
                                     workdir / f"{number}-impl{which}", index)
            reference = references[profiles[spec.text]]
            for section in group.sections:
                comparisons.append(compare_runs(section.name, str(group.config), reference, run, section.cases))
    return comparisons
