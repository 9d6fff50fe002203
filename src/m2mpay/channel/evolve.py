"""Fast copies of frozen slotted dataclasses with a few fields changed.

`dataclasses.replace` re-runs a frozen dataclass's whole `__init__`; states that
change on every payment or delivered unit are copied by a function generated
once per class that sets each slot directly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any, Final, TypeVar

__all__ = ["make_evolve"]

T = TypeVar("T")

_MISSING: Final = object()


def make_evolve(cls: type[T]) -> Callable[..., T]:
    """A function `evolve(obj, **changes)` equivalent to `dataclasses.replace` for `cls`."""
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls, "_MISSING": _MISSING}
    lines = [f"def evolve(self, *, {', '.join(f'{n}=_MISSING' for n in names)}):"]
    lines.append("    new = _new(_cls)")
    for name in names:
        # Slot descriptors set the field directly, bypassing the frozen __setattr__.
        namespace[f"set_{name}"] = cls.__dict__[name].__set__
        lines.append(f"    set_{name}(new, self.{name} if {name} is _MISSING else {name})")
    lines.append("    return new")
    exec("\n".join(lines), namespace)
    evolve: Callable[..., T] = namespace["evolve"]
    return evolve
