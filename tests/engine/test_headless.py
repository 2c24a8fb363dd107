"""The engine is headless: importing it (and running the serve/export paths) never loads Textual or torch."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

CODE = """
import sys, importlib, pkgutil, engine
# Every module of every room (walk_packages imports each package to look inside it).
names = [m.name for m in pkgutil.walk_packages(engine.__path__, 'engine.')]
heavy = {'engine.forecast.model', 'engine.forecast.forecaster', 'engine.forecast.backtest'}
for name in names:
    if name not in heavy:
        importlib.import_module(name)
bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich', 'tui', 'textual_plotext', 'plotext'))
print('UI:', bad)
print('torch:', 'torch' in sys.modules)
for name in heavy:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError:
        pass
bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich', 'tui', 'textual_plotext', 'plotext'))
print('UI after model:', bad)
"""


def test_engine_never_imports_the_ui_and_torch_stays_lazy() -> None:
    r = subprocess.run(
        [sys.executable, "-c", CODE],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "UI: []"
    assert lines[1] == "torch: False"
    assert lines[2] == "UI after model: []"
