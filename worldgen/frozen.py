"""Shared helper for the frozen config dataclasses (WorldSpec, ModelConfig): building one from JSON data."""
from __future__ import annotations

import dataclasses


def from_dict(cls, values: dict, error: type[Exception]):
    """cls(**values) with JSON lists turned back into tuples; unknown keys raise `error` naming them."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise error(f"unknown {cls.__name__} field(s) {', '.join(unknown)}: "
                    f"expected some of {', '.join(sorted(known))}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
