"""Spy on a function: record the arguments of every call and still run it."""

from __future__ import annotations

from typing import Any


def record_calls(monkeypatch, owner: Any, name: str) -> list[tuple]:
    """Replace ``owner.name`` (for the test's duration) by a wrapper that appends each call's
    positional arguments to the returned list, then calls the real function."""
    calls: list[tuple] = []
    real = getattr(owner, name)

    def wrapper(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)
    return calls
