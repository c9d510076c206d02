"""The source tree keeps its shape: small modules, one-way imports between packages, no cycles.

Read with ``ast`` from the files (nothing of forkwsgi is imported), so a broken module still gets
its layout checked. Imports inside functions count like the ones at the top: they run too.
"""
import ast
import os
import re

import pytest

from tests.support.server import ROOT

PACKAGE = os.path.join(ROOT, "forkwsgi")
TESTS = os.path.join(ROOT, "tests")
MAX_TOP_LEVEL_MODULES = 8
MAX_MODULE_LINES = 450
MAX_CLASS_LINES = 300

# What each package may import of forkwsgi besides itself; None: anything but what FORBIDDEN says.
BASE = {"forkwsgi.compiled", "forkwsgi.errors", "forkwsgi.logs", "forkwsgi.process"}
ALLOWED = {
    "http": {"forkwsgi.compiled"},
    "config": BASE | {"forkwsgi.http"},
    "shared": BASE | {"forkwsgi.http"},
    "wsgi": BASE | {"forkwsgi.http", "forkwsgi.config", "forkwsgi.shared"},
}
FORBIDDEN = {
    "observe": {"forkwsgi.master", "forkwsgi.worker"},
    "worker": {"forkwsgi.master"},
}
# The only edge from master to worker: the function a forked child runs.
MASTER_TO_WORKER = ("forkwsgi.worker.loop", "run_worker")


def module_name(path):
    relative = os.path.relpath(path, ROOT)[:-len(".py")].split(os.sep)
    if relative[-1] == "__init__":
        relative = relative[:-1]
    return ".".join(relative)


def source_files():
    found = {}
    for directory, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                found[module_name(path)] = path
    return found


MODULES = source_files()
TREES = {}


def tree(name):
    if name not in TREES:
        with open(MODULES[name], encoding="utf-8") as handle:
            TREES[name] = ast.parse(handle.read(), MODULES[name])
    return TREES[name]


def is_package(name):
    return MODULES[name].endswith("__init__.py")


def resolve(importer, node):
    """[(module, names)] that ``node`` (an Import or ImportFrom in ``importer``) brings in of forkwsgi."""
    if isinstance(node, ast.Import):
        return [(alias.name, ()) for alias in node.names if alias.name.split(".")[0] == "forkwsgi"]
    if node.level:
        base = importer.split(".")
        base = base[:len(base) - node.level + (1 if is_package(importer) else 0)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if target.split(".")[0] != "forkwsgi":
        return []
    found = []
    for alias in node.names:
        submodule = target + "." + alias.name
        if submodule in MODULES:
            found.append((submodule, ()))
        else:
            found.append((target, (alias.name,)))
    return found


def imports(name):
    """Every forkwsgi module ``name`` imports, with the names taken from it, at any depth."""
    return [edge for node in ast.walk(tree(name)) if isinstance(node, (ast.Import, ast.ImportFrom))
            for edge in resolve(name, node)]


def package_of(name):
    """'http' for forkwsgi.http.parser, 'logs' for forkwsgi.logs, '' for forkwsgi itself."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def within(target, prefixes):
    return any(target == prefix or target.startswith(prefix + ".") for prefix in prefixes)


def test_at_most_eight_modules_stand_directly_in_the_package():
    top = sorted(os.path.basename(MODULES[name]) for name in MODULES
                 if os.path.dirname(MODULES[name]) == PACKAGE)
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


def test_no_module_is_over_the_line_limit():
    too_long = {}
    for name, path in MODULES.items():
        with open(path, encoding="utf-8") as handle:
            lines = sum(1 for _ in handle)
        if lines > MAX_MODULE_LINES:
            too_long[name] = lines
    assert not too_long, "modules over %d lines: %r" % (MAX_MODULE_LINES, too_long)


def test_no_class_is_over_the_line_limit():
    too_long = {}
    for name in MODULES:
        for node in ast.walk(tree(name)):
            if isinstance(node, ast.ClassDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_CLASS_LINES:
                    too_long["%s.%s" % (name, node.name)] = lines
    assert not too_long, "classes over %d lines: %r" % (MAX_CLASS_LINES, too_long)


def forbidden_imports(name):
    package = package_of(name)
    own = "forkwsgi." + package
    wrong = []
    for target, names in imports(name):
        if within(target, [own]):
            continue
        if package in ALLOWED and not within(target, ALLOWED[package]):
            wrong.append(target)
        elif package in FORBIDDEN and within(target, FORBIDDEN[package]):
            wrong.append(target)
        elif package == "master" and within(target, ["forkwsgi.worker"]) and (target, names) != (
                MASTER_TO_WORKER[0], (MASTER_TO_WORKER[1],)):
            wrong.append("%s %s" % (target, ", ".join(names) or "(the module)"))
    return wrong


@pytest.mark.parametrize("package", sorted(ALLOWED) + sorted(FORBIDDEN) + ["master"])
def test_imports_run_one_way_between_packages(package):
    wrong = {name: forbidden_imports(name) for name in sorted(MODULES) if package_of(name) == package}
    wrong = {name: targets for name, targets in wrong.items() if targets}
    assert not wrong, "%s imports what it may not: %r" % (package, wrong)


def strongly_connected(graph):
    """Tarjan's algorithm, iterative: the components of ``graph`` with more than one module."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = counter[0]
                    counter[0] += 1
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(graph[successor])))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_no_import_cycle_between_modules():
    graph = {name: sorted({target for target, _ in imports(name) if target in MODULES and target != name})
             for name in MODULES}
    cycles = strongly_connected(graph)
    assert not cycles, "modules that import each other (directly or round a loop): %r" % cycles


def test_every_package_says_what_it_owns_in_a_docstring():
    """forkwsgi and the packages in it (not the folders a framework's conventions ask for deeper down)."""
    silent = [name for name in sorted(MODULES)
              if is_package(name) and name.count(".") <= 1 and not ast.get_docstring(tree(name))]
    assert not silent, "packages whose __init__.py has no docstring: %r" % silent


TRACKER_REFERENCE = re.compile(r"issues?[ _-]?#?[0-9]+|#[0-9]+", re.IGNORECASE)  # "issue 14", "#21"


def python_files_under_tests():
    for directory, _, files in os.walk(TESTS):
        for name in files:
            if name.endswith(".py"):
                yield os.path.join(directory, name)


def test_no_test_file_name_or_docstring_names_a_tracker_issue():
    """Tests are named by the behaviour they check; a tracker's numbering means nothing in the tree."""
    found = []
    for path in python_files_under_tests():
        relative = os.path.relpath(path, ROOT)
        if TRACKER_REFERENCE.search(os.path.basename(path)):
            found.append(relative)
        with open(path, encoding="utf-8") as handle:
            module = ast.parse(handle.read(), path)
        for node in [module] + list(ast.walk(module)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if TRACKER_REFERENCE.search(node.name):
                    found.append("%s: %s" % (relative, node.name))
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                docstring = ast.get_docstring(node) or ""
                if TRACKER_REFERENCE.search(docstring):
                    found.append("%s: docstring of %s" % (relative, getattr(node, "name", "the module")))
    assert not found, found
