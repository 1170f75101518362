"""Episode commands from the operator: Joy buttons (layout ``topics.JoyButton``, a press is
a 0 -> 1 edge) and words on ``/recorder/command``. One place for the recorder, the
human-capture and the sim nodes, so every graph reacts to the same presses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ros_nodes import convert, msgs, topics
from ros_nodes.runtime import RECORDING, Node
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


class EndableEpisode(Protocol):
    """What ending an open episode sets: the stamp of the end press and its verdict."""

    end_s: float | None
    success: bool


class EpisodeCommands:
    """A recording node's operator: subscribes ``node`` to the Joy buttons and
    ``/recorder/command`` and routes each word. start: ``begin(stamp_s)``; discard:
    ``discard(why)``; success/fail: the open episode (``open_episode()``) ends at the press's
    stamp (the first end press counts). One place for recorder_node and human_capture_node."""

    def __init__(
        self,
        node: Node,
        *,
        open_episode: Callable[[], EndableEpisode | None],
        begin: Callable[[float], None],
        discard: Callable[[str], None],
    ) -> None:
        self.node = node
        self._open_episode = open_episode
        self._begin = begin
        self._discard = discard
        self._joy = JoyPresses()
        # Deep like the recorder's streams: a press must not be overwritten while it commits.
        node.create_subscription(msgs.Joy, topics.JOY, self.on_joy, RECORDING)
        node.create_subscription(msgs.String, topics.RECORDER_COMMAND, self.on_command, RECORDING)

    def on_joy(self, msg: msgs.Joy) -> None:
        stamp = convert.stamp_s(msg)
        for word in self._joy.words(msg):
            self.event(word, stamp)

    def on_command(self, msg: msgs.String) -> None:
        word = command_word(msg, log=self.node.log)
        if word is not None:
            self.event(word, self.node.now_s())

    def event(self, word: str, stamp_s: float) -> None:
        if word == "start":
            self._begin(stamp_s)
            return
        episode = self._open_episode()
        if episode is None:
            self.node.log.warning("%s pressed, but no episode is being recorded", word)
        elif word == "discard":
            self._discard("operator discarded it")
        elif episode.end_s is None:
            episode.end_s = stamp_s
            episode.success = word == "success"
