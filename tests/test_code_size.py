"""Issue #13's size rule, kept: no Python file over 450 lines, no JavaScript function over 150 lines.

A long file or function is read less carefully and changed less safely; the rule asks for small modules named
after what they do. Python files are counted in the project's own folders (tracked or not, so a new file counts
before it is committed); JavaScript functions in ``frontend/`` are found by a real parser (prettier's bundled
acorn, through ``tests/frontend/function_lines.js``), each from its first to its last line, nested functions
included.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYTHON_FOLDERS = ("tb_cnnviz", "callbacks", "frontend", "tests", "benchmarks", "examples", "scripts")
MAX_PYTHON_LINES = 450
MAX_JS_FUNCTION_LINES = 150
FUNCTION_LINES = ROOT / "tests" / "frontend" / "function_lines.js"


def python_files() -> list[Path]:
    files = sorted(ROOT.glob("*.py"))
    for folder in PYTHON_FOLDERS:
        files += sorted(p for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts)
    return files


def line_count(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def test_no_python_file_is_over_the_limit():
    files = python_files()
    assert len(files) > 100, f"found only {len(files)} Python files under {ROOT}: the walk is broken"
    too_long = [
        f"{path.relative_to(ROOT)}: {lines} lines (limit {MAX_PYTHON_LINES})"
        for path in files
        if (lines := line_count(path)) > MAX_PYTHON_LINES
    ]
    assert not too_long, (
        "Python files over the limit; split them into modules named after what they do:\n"
        + ("\n".join(too_long))
    )


def js_functions() -> list[dict]:
    node = shutil.which("node")
    if node is None:
        pytest.skip(
            "node is not on PATH: the JavaScript function sizes are measured with node and prettier's parser"
        )
    if not (ROOT / "node_modules" / "prettier").is_dir():
        pytest.fail(
            f"node_modules/prettier is missing under {ROOT}: run `npm ci` (its acorn parser measures functions)"
        )
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "frontend").rglob("*.js"))
    assert len(files) > 20, f"found only {len(files)} JavaScript files under frontend/"
    result = subprocess.run(
        [node, str(FUNCTION_LINES), *files], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"{FUNCTION_LINES.name} failed:\n{result.stderr[-3000:]}"
    return json.loads(result.stdout)


def test_no_javascript_function_is_over_the_limit():
    functions = js_functions()
    assert len(functions) > 300, f"found only {len(functions)} functions in frontend/: the parse is broken"
    assert {f["file"] for f in functions} >= {"frontend/api.js", "frontend/layer_view.js"}
    too_long = [
        f"{f['file']}:{f['line']} {f['name']}: {f['lines']} lines (limit {MAX_JS_FUNCTION_LINES})"
        for f in sorted(functions, key=lambda f: (f["file"], f["line"]))
        if f["lines"] > MAX_JS_FUNCTION_LINES
    ]
    assert not too_long, "JavaScript functions over the limit; extract cohesive helpers:\n" + "\n".join(
        too_long
    )


def test_the_function_measure_counts_a_functions_whole_extent(tmp_path):
    """The measure itself: a function's lines are first to last, nested functions and comments inside included,
    and every kind of function is found with its name."""
    source = tmp_path / "sample.js"
    source.write_text(
        "// a comment before\n"
        "export function outer(a) {\n"  # line 2
        "  const inner = (b) => {\n"  # line 3
        "    return b;\n"
        "  };\n"  # line 5
        "  // a comment inside\n"
        "  return inner(a);\n"
        "}\n"  # line 8
        "const obj = { method() { return 1; }, arrow: () => 2 };\n"  # line 9
        "class K {\n"
        "  run(list) {\n"  # line 11
        "    return list.map(function (x) {\n"  # line 12
        "      return x;\n"
        "    });\n"  # line 14
        "  }\n"  # line 15
        "}\n"
    )
    if shutil.which("node") is None:
        pytest.skip("node is not on PATH")
    result = subprocess.run(
        ["node", str(FUNCTION_LINES), str(source)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    found = {(f["name"], f["line"], f["lines"]) for f in json.loads(result.stdout)}
    assert found == {
        ("outer", 2, 7),
        ("inner", 3, 3),
        ("method", 9, 1),
        ("arrow", 9, 1),
        ("run", 11, 5),
        ("anonymous (argument of list.map)", 12, 3),
    }
