"""Simulated tasks, known by name through ``@register_task`` (see ``registry.py``).

Importing this package imports every task module below, which is what registers them; a new
task is one module with a ``@register_task`` class plus one line here.
"""

from robot_learning.sim.tasks import empty, lift, push, stack  # noqa: F401  (registers them)
from robot_learning.sim.tasks.base import Task
from robot_learning.sim.tasks.registry import (
    TASKS,
    UnknownTaskError,
    make_task,
    register_task,
    task_names,
)

__all__ = ["TASKS", "Task", "UnknownTaskError", "make_task", "register_task", "task_names"]
