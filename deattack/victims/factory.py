"""A user's victim from the command line: `FILE.py:FACTORY` or `package.module:FACTORY`,
where FACTORY() takes no arguments and returns a deattack.Victim (built with
Victim.from_flax / from_fn / from_torch / from_callback, or loaded)."""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from pathlib import Path

from deattack.victims.victim import Victim

# "models/mine.py:build", "C:/x/mine.py:build" or "mypackage.models:build".
_FACTORY_SPEC = re.compile(r"^(?P<source>.+\.py|[A-Za-z_][\w.]*):(?P<name>[A-Za-z_]\w*)$")


def is_factory_spec(spec: str) -> bool:
    return bool(_FACTORY_SPEC.match(str(spec)))


def _module(source: str):
    if source.endswith(".py"):
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"victim factory file {source} does not exist")
        name = f"deattack_user_victim_{abs(hash(str(path.resolve())))}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses and pickling look modules up by name
        spec.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(source)
    except ModuleNotFoundError as error:
        raise ValueError(f"victim factory module {source!r} cannot be imported ({error})") from None


def load_factory(spec: str) -> Victim:
    """The Victim that FACTORY() in FILE.py / package.module returns.

    Raises:
      ValueError: no such file / module / function, or FACTORY needs arguments or does
        not return a Victim (each named).
    """
    match = _FACTORY_SPEC.match(str(spec))
    if match is None:
        raise ValueError(f"{spec!r} is not FILE.py:FACTORY or package.module:FACTORY")
    source, name = match["source"], match["name"]
    module = _module(source)
    factory = getattr(module, name, None)
    if not callable(factory):
        known = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        raise ValueError(f"{source} has no function {name!r} (functions there: {', '.join(known) or 'none'})")
    try:
        victim = factory()
    except TypeError as error:
        if "argument" in str(error):
            raise ValueError(f"{spec}: the factory must take no arguments ({error})") from None
        raise
    if not isinstance(victim, Victim):
        raise ValueError(f"{spec} returned {type(victim).__name__}, not a deattack.Victim: build one with "
                         "deattack.Victim.from_flax / from_fn / from_torch / from_callback")
    return victim
