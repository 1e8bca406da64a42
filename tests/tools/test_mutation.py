"""tools.mutation: which mutants it makes, how it samples, and the equivalents file."""

from __future__ import annotations

import random
import warnings
from pathlib import Path

import pytest

from tools import mutation

SOURCE = """from __future__ import annotations


def f(a: int | None = 1, b: list[int] = []) -> int | None:
    x: int | None = a
    if a is None or b:
        return a + 2
    return x
"""


def test_annotations_are_never_mutated_and_every_mutant_changes_the_code() -> None:
    mutants = mutation.enumerate_mutants("m.py", SOURCE)

    assert mutants
    assert all(m.code != SOURCE for m in mutants)
    # `int | None` appears in three annotations: no BitOr mutant may touch them.
    assert not [m for m in mutants if m.operator.startswith("core/ReplaceBinaryOperator_BitOr")]
    lines = {m.line for m in mutants}
    assert lines == {4, 6, 7}  # the default `= 1`, the condition, the sum
    assert any(m.before == "return a + 2" and m.after == "return a - 2" for m in mutants)


STARS = """def f(a, *, b=2):
    return g(*a, **b) + {**b, "k": [*a]}["k"] * a ** 2


def h(end):
    return end != -1
"""


def test_unpacking_and_parameter_stars_are_not_arithmetic_and_no_mutant_fails_to_compile() -> None:
    mutants = mutation.enumerate_mutants("m.py", STARS)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)  # `end is -1` is valid, if odd
        for m in mutants:
            compile(m.code, "m.py", "exec")  # raises on a mutant that would "kill" by a syntax error
    # The bare `*` marker and the unpacking stars are left alone: `def f(a, -, b=2)` and `{+b}` do not compile,
    # and `def f(a, /, b=2)` only makes the parameter positional-only.
    assert not [m for m in mutants if m.line == 1 and "ReplaceBinaryOperator" in m.operator]
    changed = {m.after for m in mutants if m.line == 2 and "ReplaceBinaryOperator_Mul" in m.operator}
    assert 'return g(*a, **b) + {**b, "k": [*a]}["k"] / a ** 2' in changed  # the multiplication is mutated
    assert all(after.count("*a") == 2 and after.count("**b") == 2 for after in changed)
    assert any("ReplaceBinaryOperator_Pow" in m.operator and "a * 2" in m.after for m in mutants)
    # `end != -1` gives `end != +1` and others, never `end != not 1`.
    on_h = {m.after for m in mutants if m.line == 6}
    assert "return end != +1" in on_h and "return end != not 1" not in on_h


def test_sample_takes_one_mutant_per_line_and_repeats_with_the_seed() -> None:
    first = mutation.sample("m.py", SOURCE, 2, random.Random(3))
    again = mutation.sample("m.py", SOURCE, 2, random.Random(3))

    assert [(m.line, m.operator) for m in first] == [(m.line, m.operator) for m in again]
    assert len({m.line for m in first}) == 2
    assert len(mutation.sample("m.py", SOURCE, 50, random.Random(3))) == 3  # one per line, no more


def test_equivalents_need_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "eq.yaml"
    path.write_text("- {file: a.py, before: 'x = 1', after: 'x = 2', reason: ''}\n")
    with pytest.raises(ValueError, match="entry 0 needs file, before, after and a reason"):
        mutation.load_equivalents(path)
    path.write_text("- {file: a.py, before: ' x = 1', after: 'x = 2', reason: the default is never read}\n")
    assert mutation.load_equivalents(path) == {("a.py", "x = 1", "x = 2"): "the default is never read"}


def test_the_checked_in_equivalents_name_existing_lines() -> None:
    for (name, before, _after, *above), _reason in mutation.load_equivalents().items():
        source = (mutation.ROOT / name).read_text()
        lines = [line.strip() for line in source.splitlines()]
        assert before in lines, f"{name}: no line '{before}' (stale equivalent)"
        if above:
            places = [i + 1 for i, line in enumerate(lines) if line == before]
            follows = {mutation.line_above(source, at) for at in places}
            assert above[0] in follows, f"{name}: '{before}' never follows '{above[0]}'"


def test_an_equivalent_with_the_line_above_holds_at_that_place_only(tmp_path: Path, monkeypatch) -> None:
    source = "for a in x:\n    if a:\n        break\nfor b in y:\n    if b > 0:\n        break\n"
    (tmp_path / "m.py").write_text(source)
    monkeypatch.setattr(mutation, "ROOT", tmp_path)
    path = tmp_path / "eq.yaml"
    path.write_text("- {file: m.py, before: break, after: continue, above: 'if b > 0:', reason: the last pass}\n")
    equivalents = mutation.load_equivalents(path)
    mutants = [m for m in mutation.enumerate_mutants("m.py", source) if m.after == "continue"]
    assert [mutation.equivalent_reason(equivalents, m) for m in mutants] == [None, "the last pass"]


def test_every_module_of_the_table_and_its_tests_exist() -> None:
    for module, tests in mutation.TESTS.items():
        assert (mutation.ROOT / module).is_file(), module
        assert tests and all((mutation.ROOT / t).exists() for t in tests), module


def test_folders_select_their_modules_and_unknown_names_are_refused() -> None:
    assert mutation.expand_modules(["policies/"]) == [m for m in mutation.TESTS if m.startswith("policies/")]
    with pytest.raises(SystemExit, match="no module of the table matches 'nowhere'"):
        mutation.expand_modules(["nowhere"])


def test_a_modules_sample_does_not_depend_on_the_other_modules_selected(tmp_path: Path, monkeypatch) -> None:
    picked = {}

    def fake_sample(module, source, size, rng):
        picked.setdefault(module, []).append(rng.random())
        return []

    monkeypatch.setattr(mutation, "sample", fake_sample)
    monkeypatch.setattr(mutation, "make_workdir", lambda parent, index: tmp_path)
    monkeypatch.setattr(mutation, "run_tests", lambda workdir, tests, timeout: ("passed", 0.0, ""))
    mutation.main(["limiter_service/algorithms.py", "--seed", "5"])
    mutation.main(["limiter_service", "--seed", "5"])
    assert picked["limiter_service/algorithms.py"][0] == picked["limiter_service/algorithms.py"][1]


def test_replay_finds_the_same_mutants_after_lines_moved(tmp_path: Path, monkeypatch, capsys) -> None:
    (tmp_path / "m.py").write_text(SOURCE)
    monkeypatch.setattr(mutation, "ROOT", tmp_path)
    earlier = {"m.py": [{"operator": m.operator, "line": m.line, "before": m.before, "after": m.after}
                        for m in mutation.enumerate_mutants("m.py", SOURCE)]}  # fmt: skip
    (tmp_path / "m.py").write_text("# a new first line\n" + SOURCE.replace("    return x\n", ""))

    plan = mutation.replay(earlier, ["m.py"])

    assert [(m.line - 1, m.after) for m in plan["m.py"]] == [
        (e["line"], e["after"]) for e in earlier["m.py"] if e["before"] != "return x"
    ]
    assert len(plan["m.py"]) == len(earlier["m.py"])  # nothing was on the removed line
    assert capsys.readouterr().out == ""


def test_replay_finds_a_mutant_by_its_line_when_its_text_key_changed(tmp_path: Path, monkeypatch, capsys) -> None:
    # A number token replaced with its line break joins two lines; the diff around it, and so the recorded
    # "before", can differ from one run to the next. The same operator, line and "after" is the same mutant.
    source = "VALUES = (\n    120,\n    150,\n)\n"
    (tmp_path / "m.py").write_text(source)
    monkeypatch.setattr(mutation, "ROOT", tmp_path)
    (wanted,) = [m for m in mutation.enumerate_mutants("m.py", source) if m.after == "120, 151,"]
    earlier = {"m.py": [{"operator": wanted.operator, "line": wanted.line, "before": "120,", "after": wanted.after}]}

    plan = mutation.replay(earlier, ["m.py"])

    assert [m.code for m in plan["m.py"]] == [wanted.code]
    assert "re-keyed: m.py" in capsys.readouterr().out
