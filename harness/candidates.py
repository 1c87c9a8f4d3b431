"""The candidates of one sweep: implementations x scenario variants, each
with the label its runs carry.

A candidate is what one run of a repeat slot runs: an implementation spec
(``--impl [NAME=]KIND[:ARG]``) under a scenario (the file as written, or one
of its ``[variants.NAME]``).  The runner interleaves the candidates of a
sweep run by run, and ``parbench compare RESULTS --baseline A --current B``
pairs the runs of two labels slot by slot.

Labels: without variants, the implementation's label (its ``NAME=``, else its
kind's label).  With variants and one implementation, the variant's name
(``base``, ``head``); with several implementations, ``VARIANT:LABEL``.
A scenario with variants runs the file as written as the variant ``base``
unless it defines ``[variants.base]`` itself.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Iterable

from parbench.errors import UsageError
from parbench.harness.scenario import BASE_VARIANT, Scenario, Variant
from parbench.harness.targets.registry import full_label, parse_impl, spec_label


@dataclass(frozen=True)
class Candidate:
    label: str
    impl: str  # the spec as typed
    scenario: Scenario
    variant: str | None = None  # None: the scenario has no variants


def scenario_variants(scenario: Scenario) -> list[Variant]:
    """Every variant a sweep of ``scenario`` can run, in file order, the
    implicit ``base`` (the file as written) first unless the file defines one."""
    if not scenario.variants:
        return []
    defined = list(scenario.variants)
    if scenario.variant(BASE_VARIANT) is None:
        defined.insert(0, Variant(BASE_VARIANT, "the scenario as written", {}, scenario))
    return defined


def parse_variant_names(text: str) -> list[str]:
    """``base,head`` -> ["base", "head"]; UsageError on an empty or repeated name."""
    names = [part.strip() for part in text.split(",")]
    if not all(names):
        raise UsageError(f"--variants {text!r}: expected comma-separated variant names, e.g. base,head")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UsageError(f"--variants {text!r}: expected distinct names, got {repeated[0]!r} twice")
    return names


def choose_variants(scenario: Scenario, names: Iterable[str] | None) -> list[Variant]:
    """The variants to run: ``names`` in that order (UsageError naming the
    scenario, with "did you mean", for one it does not define), else all."""
    available = scenario_variants(scenario)
    if names is None:
        return available
    names = list(names)
    if not available:
        raise UsageError(f"--variants: {scenario.path} defines no [variants.NAME] tables")
    by_name = {v.name: v for v in available}
    chosen = []
    for name in names:
        if name not in by_name:
            hint = difflib.get_close_matches(name, list(by_name), n=1, cutoff=0.6)
            extra = f"; did you mean {hint[0]!r}?" if hint else f"; it defines {', '.join(by_name)}"
            raise UsageError(f"--variants: {scenario.path} has no variant {name!r}{extra}")
        chosen.append(by_name[name])
    return chosen


def sweep_candidates(scenario: Scenario, impls: Iterable[Any], variants: Iterable[str] | None = None
                     ) -> list[Candidate]:
    """Implementations x chosen variants, implementation-major, labelled
    (see the module docstring).  ``impls`` were checked with ``parse_impls``."""
    impls = [str(i) for i in impls]
    chosen = choose_variants(scenario, variants)
    if not chosen:
        return [Candidate(full_label(parse_impl(impl)), impl, scenario) for impl in impls]
    out = []
    for impl in impls:
        impl_name = full_label(parse_impl(impl))
        for variant in chosen:
            label = variant.name if len(impls) == 1 else f"{variant.name}:{impl_name}"
            out.append(Candidate(label, impl, variant.scenario, variant.name))
    return out


def as_candidates(scenario: Scenario, impls: Iterable[Any]) -> list[Candidate]:
    """What the runner runs: candidates as given, plain specs as candidates
    of ``scenario`` labelled like a report labels them."""
    return [c if isinstance(c, Candidate) else Candidate(spec_label(str(c)), str(c), scenario)
            for c in impls]
