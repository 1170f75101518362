"""Episode commands from the operator: Joy buttons (layout ``topics.JoyButton``, a press is
a 0 -> 1 edge) and words on ``/recorder/command``. One place for the recorder, the
human-capture and the sim nodes, so every graph reacts to the same presses."""

from __future__ import annotations

from typing import Any

from ros_nodes import msgs, topics
from ros_nodes.topics import JoyButton

WORDS = ("start", "success", "fail", "discard")
END_WORDS = ("success", "fail", "discard")
WORD_BUTTONS = {
    "start": JoyButton.START,
    "success": JoyButton.SUCCESS,
    "fail": JoyButton.FAIL,
    "discard": JoyButton.DISCARD,
}


class JoyPresses:
    """Turns successive Joy messages into the buttons pressed since the previous one."""

    def __init__(self) -> None:
        self._previous: list[int] = []

    def pressed(self, msg: msgs.Joy) -> set[int]:
        buttons = list(msg.buttons)
        previous = self._previous or [0] * len(buttons)
        self._previous = buttons
        return {i for i, b in enumerate(buttons) if b and not (i < len(previous) and previous[i])}

    def words(self, msg: msgs.Joy) -> list[str]:
        """The episode words whose buttons were pressed, in ``WORDS`` order."""
        pressed = self.pressed(msg)
        return [word for word in WORDS if WORD_BUTTONS[word] in pressed]


def command_word(msg: msgs.String, log: Any = None) -> str | None:
    """The episode word on the command topic, or None when it is not one of ``WORDS``
    (said on ``log`` when given: for the nodes that own the command topic)."""
    word = msg.data.strip().lower()
    if word in WORDS:
        return word
    if log is not None:
        log.error(
            "%s: unknown command %r (%s)", topics.RECORDER_COMMAND, msg.data, ", ".join(WORDS)
        )
    return None
