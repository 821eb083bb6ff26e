"""synapse_serve.py needs ray; without it, at least check that it compiles
and keeps the names the Go side relies on (import_path "synapse_serve:build")."""

import ast
import os
import py_compile

HERE = os.path.dirname(os.path.abspath(__file__))
SERVE = os.path.join(HERE, "synapse_serve.py")


def test_compiles(tmp_path):
    py_compile.compile(SERVE, cfile=str(tmp_path / "synapse_serve.pyc"), doraise=True)


def test_defines_build_and_plugin_worker():
    tree = ast.parse(open(SERVE).read())
    names = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    assert {"build", "PluginWorker"} <= names
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "PluginWorker")
    methods = {n.name for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    assert {"__init__", "__call__", "check_health"} <= methods
