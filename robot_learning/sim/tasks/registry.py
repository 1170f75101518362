"""The task registry: ``@register_task`` is the one way a task becomes known by name."""

from __future__ import annotations

from robot_learning.errors import InputError
from robot_learning.sim.tasks.base import Task

TASKS: dict[str, type[Task]] = {}


class UnknownTaskError(InputError, KeyError):
    """A task name that no module registered (a KeyError too, for lookups that expect one)."""


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: make ``cls`` available as ``make_task(cls.name)``."""
    name = getattr(cls, "name", None)
    if not name:
        raise TypeError(f"{cls.__qualname__} needs a class attribute 'name' to be registered")
    if name in TASKS and TASKS[name] is not cls:
        raise ValueError(f"task {name!r} is registered twice: {TASKS[name]} and {cls}")
    TASKS[name] = cls
    return cls


def task_names() -> list[str]:
    return sorted(TASKS)


def make_task(name: str, **options: str) -> Task:
    """A fresh instance of the task registered as ``name``; ``options`` are the task's own
    keyword arguments (say ``targets="novel"`` for push), strings as a command line gives."""
    try:
        cls = TASKS[name]
    except KeyError:
        raise UnknownTaskError(
            f"unknown sim task {name!r}; known tasks: {', '.join(task_names())}"
        ) from None
    try:
        return cls(**options)
    except TypeError as exc:
        raise ValueError(f"task {name!r} does not take options {sorted(options)} ({exc})") from None
