import re
from pathlib import Path

import numpy as np
import pytest

from parbench.harness.scenario import (Distribution, ScenarioError, apply_quick, generate_host_names, load_scenario)

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "scenarios").glob("*.toml"))

MINIMAL = """
[workload]
messages_per_connection = 100
keys = 4
"""


def write(tmp_path, text, name="s.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def error_of(tmp_path, text) -> str:
    p = write(tmp_path, text)
    with pytest.raises(ScenarioError) as ei:
        load_scenario(p)
    msg = str(ei.value)
    assert "\n" not in msg
    assert msg.startswith(f"{p}: ")
    return msg[len(f"{p}: "):]


def test_shipped_scenarios_exist():
    names = {p.stem for p in SHIPPED}
    assert {"chatty-single-sender", "many-connections", "round-robin", "hot-key", "slow-destination",
            "shared-keys"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_scenario_loads_and_has_a_quick_variant(path):
    s = load_scenario(path)
    assert s.name == path.stem
    q = apply_quick(s)
    assert q.sweep.repeats == 1 and q.sweep.warmup_s == 0
    assert len(q.sweep.partitions) <= 2
    assert q.workload.connections * q.workload.messages_per_connection <= 25000


def test_shipped_scenarios_say_what_the_issue_asks():
    s = {p.stem: load_scenario(p) for p in SHIPPED}
    c = s["chatty-single-sender"]
    assert (c.workload.connections, len(c.workload.keys), c.pipeline.partition_key, c.expect.ordering) == (
        1, 16, "$HOST", "per-key")
    m = s["many-connections"]
    assert m.workload.connections >= 50 and 0 in m.sweep.partitions and max(m.sweep.partitions) > 1
    r = s["round-robin"]
    assert r.pipeline.partition_key is None and r.expect.ordering == "none"
    h = s["hot-key"]
    assert h.workload.distribution == Distribution(kind="zipf", s=1.2) and len(h.workload.keys) == 64
    sd = s["slow-destination"]
    assert sd.pipeline.cost_latency_us > 0 and max(sd.sweep.partitions) > 2
    sk = s["shared-keys"]
    assert sk.workload.connections > 1 and sk.workload.shared_keys and sk.expect.ordering == "per-key"


def test_minimal_file_gets_documented_defaults(tmp_path):
    s = load_scenario(write(tmp_path, MINIMAL))
    w = s.workload
    assert (w.connections, w.message_size, w.format, w.framing, w.key_field, w.seed) == (
        1, 256, "rfc3164", "newline", "HOST", 1)
    assert w.rate_per_connection is None and len(w.keys) == 4
    assert s.pipeline.partition_key is None and s.pipeline.flow_control
    assert s.sweep.partitions == (0, 1, 2, 4) and s.expect.ordering == "none"  # no key: round-robin


@pytest.mark.parametrize("text, expected", [
    # unknown key, with the nearest valid one
    ("[workload]\nmessages_per_connection = 1\nconections = 3\n",
     "workload.conections: unknown key; did you mean 'connections'?"),
    ("name = 'x'\n[workload]\nmessages_per_connection = 1\n[sweep]\nrepeat = 2\n",
     "sweep.repeat: unknown key; did you mean 'repeats'?"),
    ("[workloads]\n", "workloads: unknown key; did you mean 'workload'?"),
    # wrong type
    ("[workload]\nmessages_per_connection = 'many'\n",
     "workload.messages_per_connection: expected an integer in [1, 1000000000], got 'many' (string)"),
    ("[workload]\nmessages_per_connection = 10\nshared_keys = 'yes'\n",
     "workload.shared_keys: expected true or false, got 'yes' (string)"),
    ("[workload]\nmessages_per_connection = 10\nkeys = 2.5\n",
     "workload.keys: expected a key count (integer >= 1) or a list of key names, got 2.5 (float)"),
    ("workload = 3\n", "workload: expected a table, got 3 (integer)"),
    # out of range
    ("[workload]\nmessages_per_connection = 10\nconnections = 0\n",
     "workload.connections: expected an integer in [1, 100000], got 0 (integer)"),
    ("[workload]\nmessages_per_connection = 10\n[sweep]\npartitions = [1, 2, 64]\n",
     "sweep.partitions[2]: expected a partition count in [0, 32] (0 = no parallelize()), got 64"),
    ("[workload]\nmessages_per_connection = 10\nrate_per_connection = -5\n",
     "workload.rate_per_connection: expected a number in [0, 1000000000], got -5 (integer)"),
    # bad enum, with a suggestion
    ("[workload]\nmessages_per_connection = 10\nformat = 'rfc5242'\n",
     "workload.format: expected one of 'rfc3164', 'rfc5424', got 'rfc5242'; did you mean 'rfc5424'?"),
    ("[workload]\nmessages_per_connection = 10\n[pipeline]\npartition_key = '$HOST'\n[expect]\nordering = 'perkey'\n",
     "expect.ordering: expected one of 'per-key', 'per-connection', 'none', got 'perkey'; did you mean 'per-key'?"),
    # missing required
    ("[workload]\nconnections = 2\n",
     "workload.messages_per_connection: expected exactly one of workload.messages_per_connection or "
     "workload.duration_s, got neither"),
    ("[workload]\nmessages_per_connection = 10\ndistribution = { kind = 'zipf' }\n",
     "workload.distribution.s: missing required key (the zipf exponent, e.g. 1.2)"),
    ("[workload]\nmessages_per_connection = 10\ndistribution = { s = 1.0 }\n",
     "workload.distribution.kind: missing required key"),
    # cross-field rules
    ("[workload]\nmessages_per_connection = 10\nduration_s = 5\n",
     "workload.messages_per_connection: expected exactly one of workload.messages_per_connection or "
     "workload.duration_s, got both"),
    ("[workload]\nmessages_per_connection = 10\nkey_field = '.SDATA.meta@1.host'\n",
     "workload.key_field: expected 'HOST' or 'PROGRAM' with format 'rfc3164' (SDATA needs 'rfc5424'), "
     "got '.SDATA.meta@1.host'"),
    ("[workload]\nmessages_per_connection = 10\nkeys = 3\ndistribution = { kind = 'weights', weights = [1, 2] }\n",
     "workload.distribution.weights: expected 3 weights (one per key), got 2"),
    ("[workload]\nmessages_per_connection = 10\nconnections = 4\nkeys = 2\nshared_keys = false\n",
     "workload.shared_keys: expected at least one key per connection when false (4 connections), got 2 keys"),
    ("[workload]\nmessages_per_connection = 10\nkeys = ['a', 'b', 'a']\n",
     "workload.keys: expected distinct key names, got 'a' more than once"),
    ("[workload]\nmessages_per_connection = 10\nkeys = ['ok', 'has space']\n",
     "workload.keys[1]: expected a name of 1-64 characters from A-Z a-z 0-9 . _ @ / + -, got 'has space' (string)"),
    ("[workload]\nmessages_per_connection = 10\nconnections = 5\n[pipeline]\nmax_connections = 2\n",
     "pipeline.max_connections: expected >= workload.connections (5), got 2"),
    ("[workload]\nmessages_per_connection = 10\n[sweep]\npartitions = [1, 4]\n[expect]\nordering = 'per-key'\n",
     "expect.ordering: expected 'none' for a round-robin pipeline (no pipeline.partition_key) with more than "
     "one partition: round-robin keeps no order, got 'per-key'"),
    ("[workload]\nmessages_per_connection = 10\n[sweep]\nimplementations = ['reference', 'command:relay {in_port}']\n",
     "sweep.implementations[1]: expected command:ARGV with {in_port} and {out_port} in ARGV, "
     "got 'command:relay {in_port}' (no {out_port})"),
    ("[workload]\nmessages_per_connection = 10\n[sweep]\nimplementations = ['reference', 'syslogng']\n",
     "sweep.implementations[1]: expected reference[:PROFILE], syslog-ng[:PATH], axosyslog[:VERSION|PATH] "
     "or command:ARGV, optionally as NAME=SPEC, "
     "got 'syslogng'; did you mean 'syslog-ng'?"),
    ("[workload]\nmessages_per_connection = 10\n[sweep]\nimplementations = ['reference', 'a=syslog-ng', 'a=reference']\n",
     "sweep.implementations[2]: expected implementations a report can tell apart (give one a NAME= label), "
     "got 'a' twice (entries 1 and 2)"),
    ("[workload]\nmessages_per_connection = 10\ndistribution = { kind = 'uniform', s = 2 }\n",
     "workload.distribution.s: expected no 's' unless kind = 'zipf', got kind 'uniform'"),
])
def test_bad_input_gets_one_line_naming_file_key_and_expectation(tmp_path, text, expected):
    assert error_of(tmp_path, text) == expected


def test_message_size_too_small_names_the_minimum(tmp_path):
    msg = error_of(tmp_path, "[workload]\nmessages_per_connection = 10\nkeys = ['web-01']\nmessage_size = 60\n")
    m = re.fullmatch(r"workload\.message_size: expected >= (\d+) for this format, key field and key set "
                     r"\(header \+ 56-byte trailer\), got 60", msg)
    assert m, msg
    need = int(m.group(1))
    # the stated minimum is accepted, one less is not
    load_scenario(write(tmp_path, f"[workload]\nmessages_per_connection = 10\nkeys = ['web-01']\nmessage_size = {need}\n"))
    assert "expected >=" in error_of(
        tmp_path, f"[workload]\nmessages_per_connection = 10\nkeys = ['web-01']\nmessage_size = {need - 1}\n")


def test_invalid_toml_names_line_and_column(tmp_path):
    msg = error_of(tmp_path, "[workload]\nconnections = = 3\n")
    assert msg.startswith("invalid TOML:") and "line 2" in msg


def test_unknown_key_without_close_match_lists_valid_keys(tmp_path):
    msg = error_of(tmp_path, "[workload]\nmessages_per_connection = 1\n[expect]\nzzzzzz = 1\n")
    assert msg == "expect.zzzzzz: unknown key; valid keys: ordering, loss_allowed"


def test_missing_file_is_a_scenario_error(tmp_path):
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "nope.toml")


def _valid_keys(tmp_path, section_text: str, path: str) -> list[str]:
    msg = error_of(tmp_path, section_text + "zzzzzzzzzz = 1\n")
    prefix = f"{path}zzzzzzzzzz: unknown key; valid keys: "
    assert msg.startswith(prefix), msg
    return msg[len(prefix):].split(", ")


def test_readme_documents_every_key(tmp_path):
    readme = (ROOT / "scenarios" / "README.md").read_text()
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", readme, flags=re.M))
    base = "[workload]\nmessages_per_connection = 1\n"
    sections = {
        "": "",
        "workload.": "[workload]\nmessages_per_connection = 1\n",
        "workload.distribution.": base + "[workload.distribution]\nkind = 'uniform'\n",
        "pipeline.": base + "[pipeline]\n",
        "sweep.": base + "[sweep]\n",
        "sweep.quick.": base + "[sweep.quick]\n",
        "expect.": base + "[expect]\n",
        "faults.": base + "[faults]\n",
        **{f"faults.{kind}.": base + f"[faults.{kind}]\n" for kind in
           ("destination_down", "destination_slow", "connection_reset", "target_restart")},
    }
    for path, text in sections.items():
        keys = _valid_keys(tmp_path, text, path)
        assert keys
        for k in keys:
            if (path, k) in (("", "workload"), ("", "pipeline"), ("", "sweep"), ("", "expect"), ("", "faults"),
                             ("sweep.", "quick")):
                assert f"[{path}{k}]" in readme  # a table: documented by its section
                continue
            assert k in documented, f"{path}{k} is not documented in scenarios/README.md"


def test_host_names_are_deterministic_distinct_and_realistic():
    a = generate_host_names(500, 7)
    assert a == generate_host_names(500, 7)
    assert a != generate_host_names(500, 8)
    assert len(set(a)) == 500
    for name in a:
        assert re.fullmatch(r"[a-z]+-?\d+(\.[a-z]+)?|[a-z]+-[a-z]{2}-\d+\.[a-z.]+", name), name


@pytest.mark.parametrize("dist, n, first", [
    (Distribution("uniform"), 4, 0.25),
    (Distribution("zipf", s=1.0), 2, 2 / 3),
    (Distribution("weights", weights=(3.0, 1.0)), 2, 0.75),
    (Distribution("hot-key", hot_share=0.9), 5, 0.9),
])
def test_distribution_probabilities(dist, n, first):
    p = dist.probabilities(n)
    assert p.shape == (n,) and np.isclose(p.sum(), 1.0) and np.isclose(p[0], first)
    if dist.kind == "hot-key":
        assert np.allclose(p[1:], 0.1 / 4)


def test_apply_quick_respects_overrides(tmp_path):
    s = load_scenario(write(tmp_path, """
[workload]
connections = 10
messages_per_connection = 100000
keys = 20
[pipeline]
partition_key = "$HOST"
[sweep]
partitions = [0, 1, 2, 8]
repeats = 5
warmup_s = 1.0
[sweep.quick]
partitions = [2]
messages_per_connection = 77
"""))
    q = apply_quick(s)
    assert q.sweep.partitions == (2,) and q.workload.messages_per_connection == 77
    assert q.sweep.repeats == 1 and q.workload.keys == s.workload.keys
    d = apply_quick(load_scenario(write(tmp_path, "[workload]\nmessages_per_connection = 100000\nconnections = 4\n"
                                                  "[pipeline]\npartition_key = '$HOST'\n"
                                                  "[sweep]\npartitions = [0, 1, 2, 8]\n")))
    assert d.sweep.partitions == (0, 8) and d.workload.messages_per_connection == 5000
