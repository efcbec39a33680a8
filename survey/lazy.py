"""Deferred imports for the heavy analysis stack.

pandas, scipy, statsmodels and plotly add about 100 MB to a process. A gunicorn worker
that only serves respondents never needs them, so researcher-side modules refer to them
through :class:`LazyModule` and the import happens on a researcher's first request.
"""

from __future__ import annotations

import importlib
from types import ModuleType


class LazyModule:
    """A module imported on first attribute access."""

    def __init__(self, name: str):
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str):
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attribute)

    def __repr__(self) -> str:
        state = "loaded" if self._module is not None else "not loaded"
        return f"<LazyModule {self._name} ({state})>"
