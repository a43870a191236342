"""The package's import graph: one way through, no module importing one that imports it back."""

import ast
import subprocess
import sys

from conftest import REPO

PACKAGE = REPO / "argmax_music"


def module_name(path) -> str:
  parts = path.relative_to(REPO).with_suffix("").parts
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path, modules: set[str]) -> set[str]:
  """The package's modules that `path` imports anywhere in it (function-level imports included)."""
  found = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      found |= {a.name for a in node.names}
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      found.add(node.module)
      found |= {f"{node.module}.{a.name}" for a in node.names}
  return {m for m in found if m in modules}


def test_no_import_cycle():
  paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
  graph = {m: imports_of(p, set(paths)) - {m} for m, p in paths.items()}
  for name in list(graph):  # A submodule's import runs its package's __init__ first.
    graph[name] |= {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)} - {name}
  state, cycles = {}, []

  def visit(node, trail):
    state[node] = "open"
    for nxt in sorted(graph[node]):
      if state.get(nxt) == "open":
        cycles.append(trail[trail.index(nxt) :] + [nxt])
      elif nxt not in state:
        visit(nxt, trail + [nxt])
    state[node] = "done"

  for name in sorted(graph):
    if name not in state:
      visit(name, [name])
  assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_sample_does_not_import_evaluate():
  code = "import sys, argmax_music.sample; print('argmax_music.evaluate' in sys.modules)"
  out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
  assert out.stdout.strip() == "False"
