"""Which names are credentials: one convention for every place that must keep them out of sight
(runner parameters, custom args, environments handed to kernels, profiles shown to users)."""

from __future__ import annotations

SECRET_WORDS = ("KEY", "TOKEN", "PASSWORD", "SECRET", "APIKEY")


def is_secret_name(name: str) -> bool:
    """Whether a variable, parameter or custom-arg name looks like a credential."""
    upper = name.upper()
    return any(word in upper for word in SECRET_WORDS)
