"""The layering of the code: data flows engine -> app; gradio only where components are built."""
import ast
import subprocess
import sys
from pathlib import Path

from charrnn.runs.store import PROJECT_DIR

NO_GRADIO = ["charrnn.vocab", "charrnn.model", "charrnn.data", "charrnn.train", "charrnn.sample", "charrnn.inside",
             "charrnn.config", "charrnn.precision", "charrnn.cli", "charrnn.runs.store", "charrnn.runs.weights",
             "charrnn.runs.runner", "charrnn.runs.jobs", "charrnn.runs.schema", "webui.lru", "webui.settings",
             "webui.errors", "webui.checks", "webui.models", "webui.colours", "webui.prime", "webui.context",
             "webui.fair", "webui.owners", "webui.transfer", "webui.train.forms", "webui.train.actions",
             "webui.train.render", "webui.train.compare", "webui.train.metrics", "webui.generate.generation",
             "webui.generate.view", "webui.inside.units", "webui.inside.view", "webui.quotas", "webui.expiry",
             "webui.turns", "charrnn.runs.watchdog"]
GRADIO_ALLOWED = {"app.py", "webui/glue.py", "webui/train/tab.py", "webui/generate/tab.py", "webui/inside/tab.py",
                  "webui/demo.py"}
TABS = ("train", "generate", "inside")


def source_files() -> list[Path]:
    return [p for folder in ("charrnn", "webui", "bench") for p in (PROJECT_DIR / folder).rglob("*.py")] + \
        [PROJECT_DIR / "app.py"]


def dotted(path: Path) -> str:
    parts = path.relative_to(PROJECT_DIR).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_dotted(path: Path) -> set[str]:
    """The project modules ``path`` imports, by their full dotted names (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = dotted(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            names.add(base)
            names |= {f"{base}.{a.name}" for a in node.names}
    return {n for n in names if n.split(".")[0] in ("charrnn", "webui", "bench", "app")}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_engine_and_the_apps_logic_import_without_gradio():
    code = ("import sys\n" + "".join(f"import {m}\n" for m in NO_GRADIO)
            + "print(sorted(m for m in sys.modules if m.split('.')[0] == 'gradio'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_only_the_tab_demo_and_glue_modules_and_app_py_import_gradio():
    importers = {str(p.relative_to(PROJECT_DIR)) for p in source_files() if "gradio" in imported_modules(p)}
    assert importers <= GRADIO_ALLOWED and "webui/demo.py" in importers


def test_the_engine_never_imports_the_app():
    for path in (PROJECT_DIR / "charrnn").rglob("*.py"):
        assert not imported_modules(path) & {"webui", "app", "gradio"}, path.name


def test_the_model_core_never_imports_run_storage():
    core = [p for p in (PROJECT_DIR / "charrnn").glob("*.py") if p.name != "cli.py"]
    for path in core:
        assert not {m for m in imported_dotted(path) if m.startswith("charrnn.runs")}, path.name


def test_a_tab_folder_imports_only_the_webui_base_and_the_engine():
    for tab in TABS:
        for path in (PROJECT_DIR / "webui" / tab).rglob("*.py"):
            other = {m for m in imported_dotted(path) if m.startswith("webui.")
                     and m.split(".")[1] in TABS and m.split(".")[1] != tab}
            assert not other, (str(path.relative_to(PROJECT_DIR)), other)


def test_the_webui_base_never_imports_a_tab_except_the_two_that_assemble_them():
    """The app (demo.py) and the static site (export.py: the Generate tab's runtime and the Train tab's training in
    the browser, with no server)."""
    for path in (PROJECT_DIR / "webui").glob("*.py"):
        if path.name in ("demo.py", "export.py"):
            continue
        tabs = {m for m in imported_dotted(path) if m.startswith("webui.") and m.split(".")[1] in TABS}
        assert not tabs, (path.name, tabs)


def test_no_import_cycles_anywhere():
    modules = {dotted(p): p for p in source_files()}
    graph = {m: {i for i in imported_dotted(p) if i in modules and i != m} for m, p in modules.items()}
    seen, on_path = set(), []

    def visit(m):
        if m in on_path:
            raise AssertionError(" -> ".join(on_path[on_path.index(m):] + [m]))
        if m in seen:
            return
        on_path.append(m)
        for n in graph[m]:
            if not (m.startswith(n + ".")):          # a package importing its own submodule is no cycle
                visit(n)
        on_path.pop()
        seen.add(m)

    for m in graph:
        visit(m)


def test_argparse_is_only_in_the_two_command_lines_and_the_benchmarks():
    """The engine's CLI, and the static site's export (app-side: it writes the page, which the engine never
    imports)."""
    users = {str(p.relative_to(PROJECT_DIR)) for p in source_files() if "argparse" in imported_modules(p)}
    assert {u for u in users if not u.startswith("bench/")} == {"charrnn/cli.py", "webui/export.py"}


def test_no_source_file_grows_past_600_lines():
    long = {str(p.relative_to(PROJECT_DIR)): n for p in source_files()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 600}
    assert long == {}


def test_app_py_is_a_thin_entry_point_with_a_module_level_demo():
    text = (PROJECT_DIR / "app.py").read_text(encoding="utf-8")
    tree = ast.parse(text)
    assert len(text.splitlines()) < 40
    assert any(isinstance(n, ast.Assign) and any(getattr(t, "id", None) == "demo" for t in n.targets)
               for n in tree.body)
    assert not [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
