"""scripts/module_map.py: the module-size figures and module summaries the docs are written from."""

from __future__ import annotations

from scripts.module_map import LIMIT, Module, _summary, figures, layers


def test_figures_name_the_largest_module_the_median_and_how_many_are_over_the_limit():
    found = [Module("a.py", 10, ""), Module("b.py", LIMIT + 1, ""), Module("c.py", 30, ""), Module("d.py", 20, "")]
    assert figures(found) == f"4 modules; largest `b.py` {LIMIT + 1} lines; median 25; over {LIMIT}: 1"


def test_a_summary_is_the_docstrings_first_sentence_on_one_line():
    doc = "Encryption at rest for tokens\nand secrets (Fernet). Keys rotate.\n\nMore detail."
    assert _summary(doc) == "Encryption at rest for tokens and secrets (Fernet)."
    assert _summary("") == ""
    assert _summary("x" * 300, limit=20) == "x" * 19 + "…"


def test_the_layers_are_read_from_the_import_linter_contract():
    assert layers() == ["sync", "accounts", "integrations", "connector"]
