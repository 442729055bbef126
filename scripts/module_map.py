"""`python scripts/module_map.py`: the module map and size figures, written from the code itself.

Writes `docs/MODULES.md` (every production module with its lines and the first sentence of its own
docstring, package by package, under the layers import-linter enforces, and the import graph
between subpackages read from the import statements) and replaces the block
between the `module-sizes` markers in README.md with the size figures (largest production module,
median, how many are over the limit). Nothing in either is typed by hand, so they cannot drift
from the code: run it again after moving code (`--check` exits 1 when either file is stale).

Production code is the four layered packages (connector, integrations, accounts, sync); the
sandbox, the benches and the scripts are counted on their own lines. Migrations are generated
code and are left out. "Lines" are physical lines, as `wc -l` counts them. A sentence "first"
means up to the first ". " of the docstring's first paragraph.
"""

from __future__ import annotations

import argparse
import ast
import statistics
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 400  # issue 17: no production module over 400 lines
OUTSIDE = ("sandbox", "bench", "scripts")  # not production, but shown with their own figures
README_START = "<!-- module-sizes: written by scripts/module_map.py -->"
README_END = "<!-- /module-sizes -->"


@dataclass(frozen=True)
class Module:
    path: str
    lines: int
    summary: str


def layers() -> list[str]:
    """The layer order of the import-linter contract, highest first (pyproject.toml)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    for contract in config["contracts"]:
        if contract["type"] == "layers":
            return list(contract["layers"])
    raise SystemExit("pyproject.toml has no import-linter layers contract")


def modules(package: str) -> list[Module]:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        relative = path.relative_to(ROOT)
        if "migrations" in relative.parts:
            continue
        text = path.read_text(encoding="utf-8")
        docstring = ast.get_docstring(ast.parse(text)) or ""
        found.append(Module(str(relative), len(text.splitlines()), _summary(docstring)))
    return found


def _summary(docstring: str, limit: int = 180) -> str:
    """The docstring's first sentence (its first paragraph up to the first full stop), at most `limit` long."""
    paragraph = " ".join(docstring.strip().split("\n\n")[0].split())
    if ". " in paragraph:
        paragraph = paragraph.split(". ")[0] + "."
    return paragraph if len(paragraph) <= limit else paragraph[: limit - 1].rstrip() + "…"


def unit_of(module: str) -> str:
    """The unit a dotted module belongs to in the import graph: its package and subpackage
    (`sync.services.push.read` -> `sync.services`); a top-level module counts as its package
    (`sync.admin` -> `sync`)."""
    parts = module.split(".")
    if len(parts) > 1 and (ROOT / parts[0] / parts[1]).is_dir():
        return ".".join(parts[:2])
    return parts[0]


def _is_module(dotted: str) -> bool:
    path = ROOT.joinpath(*dotted.split("."))
    return path.is_dir() or path.with_suffix(".py").exists()


def import_graph(order: list[str]) -> dict[str, set[str]]:
    """Which units of the layered packages each unit imports (at any depth, lazy imports included)."""
    graph: dict[str, set[str]] = {}
    for package in order:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if "migrations" in relative.parts:
                continue
            name = ".".join(relative.with_suffix("").parts)
            if name.endswith(".__init__"):
                name = name[: -len(".__init__")]
            source = unit_of(name)
            targets = graph.setdefault(source, set())
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                imported = []
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    # `from sync.services import gate` imports the module sync.services.gate.
                    imported = [
                        f"{node.module}.{alias.name}" if _is_module(f"{node.module}.{alias.name}") else node.module
                        for alias in node.names
                    ]
                elif isinstance(node, ast.Import):
                    imported = [alias.name for alias in node.names]
                for module in imported:
                    if module.split(".")[0] in order and unit_of(module) != source:
                        targets.add(unit_of(module))
    return graph


def figures(found: list[Module]) -> str:
    sizes = [m.lines for m in found]
    largest = max(found, key=lambda m: m.lines)
    over = sum(1 for size in sizes if size > LIMIT)
    return (
        f"{len(found)} modules; largest `{largest.path}` {largest.lines} lines; "
        f"median {statistics.median(sizes):g}; over {LIMIT}: {over}"
    )


def module_doc(order: list[str]) -> str:
    production = [m for package in order for m in modules(package)]
    out = [
        "# Module map",
        "",
        "Written by `python scripts/module_map.py` from the code (each module's lines and the first line",
        "of its own docstring); do not edit by hand. What the packages are for and how data flows through",
        'them: the README\'s "Architecture in a page".',
        "",
        "Layers (import-linter, `make lint`): " + " → ".join(f"`{name}`" for name in order) + " — a module",
        "imports only its own layer and those after it.",
        "",
        f"- **Production** ({', '.join(order)}): {figures(production)}.",
    ]
    for package in OUTSIDE:
        out.append(f"- `{package}/`: {figures(modules(package))}.")
    out += [
        "",
        "## Import graph",
        "",
        "What each unit of the layered code imports (a unit is a subpackage, e.g. `sync.services`, or a",
        "package's top-level modules, e.g. `sync`), read from the import statements, lazy ones included.",
        "Across packages every edge points down the layers (import-linter enforces it).",
        "",
        "| unit | imports |",
        "|---|---|",
    ]
    graph = import_graph(order)
    rank = {name: index for index, name in enumerate(order)}
    for unit in sorted(graph, key=lambda u: (rank[u.split(".")[0]], u)):
        targets = sorted(graph[unit], key=lambda u: (rank[u.split(".")[0]], u))
        out.append(f"| `{unit}` | {', '.join(f'`{t}`' for t in targets) or '—'} |")
    for package in [*reversed(order), *OUTSIDE]:  # from the lowest layer up
        out += ["", f"## `{package}/`", "", "| module | lines | what it is for |", "|---|---:|---|"]
        for module in modules(package):
            if Path(module.path).name == "__init__.py" and module.lines <= 1:
                continue
            summary = module.summary.replace("|", "\\|")
            out.append(f"| `{module.path}` | {module.lines} | {summary} |")
    return "\n".join(out) + "\n"


def readme_block(order: list[str]) -> str:
    production = [m for package in order for m in modules(package)]
    sandbox = modules("sandbox")
    return "\n".join(
        [
            README_START,
            f"Module sizes (production: {', '.join(order)}): {figures(production)}. "
            f"Sandbox: {figures(sandbox)}. Every module, with what it is for: [docs/MODULES.md](docs/MODULES.md).",
            README_END,
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when a production module is over the limit or docs/MODULES.md / README.md is stale",
    )
    args = parser.parse_args()
    order = layers()
    doc_path, readme_path = ROOT / "docs" / "MODULES.md", ROOT / "README.md"
    readme = readme_path.read_text(encoding="utf-8")
    if README_START not in readme or README_END not in readme:
        print(f"README.md has no {README_START} ... {README_END} block", file=sys.stderr)
        return 1
    head, rest = readme.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    new_readme = head + readme_block(order) + tail
    new_doc = module_doc(order)
    if args.check:
        status = 0
        over = [m for package in order for m in modules(package) if m.lines > LIMIT]
        for module in over:
            print(f"{module.path}: {module.lines} lines, over the {LIMIT}-line limit (split it)", file=sys.stderr)
            status = 1
        stale = [p.name for p, new in ((doc_path, new_doc), (readme_path, new_readme)) if _read(p) != new]
        if stale:
            print(f"stale: {', '.join(stale)} (run python scripts/module_map.py)", file=sys.stderr)
            status = 1
        return status
    doc_path.parent.mkdir(exist_ok=True)
    doc_path.write_text(new_doc, encoding="utf-8")
    readme_path.write_text(new_readme, encoding="utf-8")
    print(readme_block(order).splitlines()[1])
    return 0


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""


if __name__ == "__main__":
    sys.exit(main())
