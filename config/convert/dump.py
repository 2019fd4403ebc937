# Run by `mako convert-config` as: python3 -B -c SCRIPT CONFIG.py < DEFAULTS.json
# Executes a SocketShark config module from its file and prints its
# upper-case names as one JSON object on stdout. SocketShark itself need not
# be installed: when it is not, stand-ins for socketshark.config_defaults
# (SocketShark's defaults, read from stdin) and socketshark.types (its
# NewType wrappers, which return their argument) let a config that imports
# from them load.
import importlib.machinery
import importlib.util
import json
import math
import os
import sys
import types

REPR = "__python_repr__"


def stand_ins(defaults_text):
    if importlib.util.find_spec("socketshark") is not None:
        return
    pkg = types.ModuleType("socketshark")
    pkg.__path__ = []
    defaults = types.ModuleType("socketshark.config_defaults")
    for name, value in json.loads(defaults_text).items():
        setattr(defaults, name, value)
    typ = types.ModuleType("socketshark.types")

    def wrapper(name):
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda value: value

    typ.__getattr__ = wrapper
    pkg.config_defaults = defaults
    pkg.types = typ
    sys.modules["socketshark"] = pkg
    sys.modules["socketshark.config_defaults"] = defaults
    sys.modules["socketshark.types"] = typ


def plain(value):
    # bool before int: bool is an int in Python.
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {REPR: repr(value)}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return {REPR: repr(value)}


def main():
    path = os.path.abspath(sys.argv[1])
    stand_ins(sys.stdin.read())
    # Sibling modules of the config import as they would with the config's
    # directory on sys.path.
    sys.path.insert(0, os.path.dirname(path))
    name = os.path.splitext(os.path.basename(path))[0]
    # An explicit loader, so a file not ending in .py loads too.
    loader = importlib.machinery.SourceFileLoader(name, path)
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    # What the module prints must not mix with the JSON.
    out, sys.stdout = sys.stdout, sys.stderr
    try:
        spec.loader.exec_module(module)
    finally:
        sys.stdout = out
    settings = {k: plain(getattr(module, k)) for k in dir(module) if k.isupper()}
    json.dump(settings, sys.stdout)


main()
