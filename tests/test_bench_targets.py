import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "benchmarks"))
import targets  # noqa: E402


def bench_file(tmp_path, **overrides):
    figures = {
        "test_dispatch_keyed[4]": {"msgs_per_s": 2_000_000},
        "test_service_end_to_end_one_connection[$HOST]": {"msgs_per_s": 200_000},
        "test_parse_and_check_a_captured_buffer": {"msgs_per_s": 4_000_000},
        "test_memory_per_tracked_message": {"bytes_per_message": 70},
        "test_parbench_sender": {"msgs_per_s": [3_000_000, 3_300_000, 3_100_000]},
        "test_loggen_anchor": {"msgs_per_s": [1_000_000, 900_000, 1_100_000]},
        "test_long_line_framing_is_linear": {"ratio_64_to_16_mib": 4.6},
        "test_a_flood_slows_a_good_connection_only_by_its_share": {"slowdown_ratio": 2.0},
    }
    figures.update(overrides)
    doc = {"benchmarks": [{"name": n, "extra_info": e} for n, e in figures.items() if e is not None]}
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(doc))
    return str(path)


def test_all_targets_met(tmp_path, capsys):
    assert targets.main(bench_file(tmp_path)) == 0
    assert "MISSED" not in capsys.readouterr().out


def test_generator_ratio_is_taken_from_medians_of_the_same_run(tmp_path, capsys):
    # 3.1M / 1.0M = 3.1 passes; a sender at 2.9M (ratio 2.9) misses.
    path = bench_file(tmp_path, test_parbench_sender={"msgs_per_s": [2_900_000] * 3})
    assert targets.main(path) == 1
    assert "MISSED  generation + sending vs syslog-ng's loggen" in capsys.readouterr().out


def test_each_kind_of_miss_is_caught(tmp_path):
    for name, info in [("test_dispatch_keyed[4]", {"msgs_per_s": 999_999}),
                       ("test_service_end_to_end_one_connection[$HOST]", {"msgs_per_s": 149_000}),
                       ("test_parse_and_check_a_captured_buffer", {"msgs_per_s": 2_999_999}),
                       ("test_memory_per_tracked_message", {"bytes_per_message": 101}),
                       ("test_long_line_framing_is_linear", {"ratio_64_to_16_mib": 8.5}),
                       ("test_a_flood_slows_a_good_connection_only_by_its_share", {"slowdown_ratio": 9})]:
        assert targets.main(bench_file(tmp_path, **{name: info})) == 1, name


def test_a_missing_benchmark_is_not_a_pass(tmp_path, capsys):
    assert targets.main(bench_file(tmp_path, test_loggen_anchor=None)) == 2
    assert "ABSENT" in capsys.readouterr().out
