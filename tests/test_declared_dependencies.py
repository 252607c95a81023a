"""Every third-party package the node imports is one it declares.

A package that is only installed because something else (a test tool, another dependency's
dependency) pulls it in is missing from the Docker images, which install exactly the
closure of pyproject.toml's dependencies (docker/lock.py): ``protocol.sealed`` imported
``cryptography``, present in the dev environment through moto, absent from the image's lock.
Imports inside functions may come from an extra (the optional data and Hugging Face paths).
"""

from __future__ import annotations

import ast
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
FIRST_PARTY = ("gauntlet", "protocol", "neurons")


def _declared() -> tuple[set[str], set[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    extras = {
        canonicalize_name(Requirement(r).name)
        for group in project["optional-dependencies"].values()
        for r in group
    }
    return core, extras


def _imports(tree: ast.Module) -> tuple[set[str], set[str]]:
    """(modules imported at module level, including under a top-level if/try; all modules)."""

    def names(nodes: list[ast.AST]) -> set[str]:
        out: set[str] = set()
        for n in nodes:
            if isinstance(n, ast.Import):
                out |= {a.name.split(".")[0] for a in n.names}
            elif isinstance(n, ast.ImportFrom) and n.level == 0 and n.module:
                out.add(n.module.split(".")[0])
        return out

    top_nodes: list[ast.AST] = []
    for node in tree.body:
        top_nodes.extend(ast.walk(node) if isinstance(node, (ast.If, ast.Try)) else [node])
    return names(top_nodes), names(list(ast.walk(tree)))


def test_every_third_party_import_is_a_declared_dependency() -> None:
    core, extras = _declared()
    distributions = packages_distributions()
    skip = set(sys.stdlib_module_names) | set(FIRST_PARTY)
    undeclared = []
    files = [f for package in FIRST_PARTY for f in sorted((ROOT / package).rglob("*.py"))]
    assert len(files) > 100  # the walk found the code
    for path in files:
        top, every = _imports(ast.parse(path.read_text(), str(path)))
        for module in sorted(every - skip):
            dists = {canonicalize_name(d) for d in distributions.get(module, [module])}
            allowed = core if module in top else core | extras
            if not dists & allowed:
                undeclared.append(
                    f"{path.relative_to(ROOT)}: {module} ({', '.join(sorted(dists))})"
                )
    assert not undeclared, "imported but not declared in pyproject.toml:\n" + "\n".join(undeclared)
