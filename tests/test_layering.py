"""The layering of the code: data flows engine -> app; gradio only where components are built."""
import ast
import subprocess
import sys
from pathlib import Path

from charrnn.checkpoint import PROJECT_DIR

NO_GRADIO = ["charrnn.vocab", "charrnn.model", "charrnn.data", "charrnn.train", "charrnn.sample", "charrnn.inside",
             "charrnn.checkpoint", "charrnn.runner", "charrnn.jobs", "charrnn.cli", "charrnn.presets", "charrnn.lru",
             "webui.settings", "webui.errors", "webui.forms", "webui.actions", "webui.models", "webui.generation",
             "webui.units", "webui.render", "webui.render_inside", "webui.context", "webui.fair"]
GRADIO_ALLOWED = {"app.py", "webui/glue.py", "webui/train_tab.py", "webui/generate_tab.py", "webui/inside_tab.py",
                  "webui/demo.py"}


def source_files() -> list[Path]:
    return [p for folder in ("charrnn", "webui", "bench") for p in (PROJECT_DIR / folder).glob("*.py")] + \
        [PROJECT_DIR / "app.py"]


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
    for path in (PROJECT_DIR / "charrnn").glob("*.py"):
        assert not imported_modules(path) & {"webui", "app", "gradio"}, path.name


def test_argparse_is_only_in_the_cli_and_the_benchmarks():
    users = {str(p.relative_to(PROJECT_DIR)) for p in source_files() if "argparse" in imported_modules(p)}
    assert {u for u in users if not u.startswith("bench/")} == {"charrnn/cli.py"}


def test_no_source_file_is_over_400_lines():
    long = {str(p.relative_to(PROJECT_DIR)): n for p in source_files()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert long == {}


def test_app_py_is_a_thin_entry_point_with_a_module_level_demo():
    text = (PROJECT_DIR / "app.py").read_text(encoding="utf-8")
    tree = ast.parse(text)
    assert len(text.splitlines()) < 40
    assert any(isinstance(n, ast.Assign) and any(getattr(t, "id", None) == "demo" for t in n.targets)
               for n in tree.body)
    assert not [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
