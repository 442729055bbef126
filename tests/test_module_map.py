"""scripts/module_map.py: the module-size figures and module summaries the docs are written from."""

from __future__ import annotations

from scripts.module_map import LIMIT, Module, _summary, figures, import_graph, layers, unit_of


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


def test_units_are_subpackages_or_a_packages_top_level_modules():
    assert unit_of("sync.services.push.read") == "sync.services"
    assert unit_of("sync.admin") == "sync"
    assert unit_of("integrations") == "integrations"


def test_the_import_graph_reads_the_code_and_points_down_the_layers():
    order = layers()
    graph = import_graph(order)
    assert "sync.mappers" in graph["sync.services"]  # `from sync.mappers import ...` in the services
    rank = {name: index for index, name in enumerate(order)}
    for unit, targets in graph.items():
        for target in targets:
            assert rank[target.split(".")[0]] >= rank[unit.split(".")[0]], (unit, target)
