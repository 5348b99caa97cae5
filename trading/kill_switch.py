"""Kill-switch sources: a file, an environment variable and a journal flag.

Pure reading and deciding; polling and acting on the reading is the Supervisor's job. Every source fails
safe: anything present that we cannot understand means SAFE (no new exposure), never NORMAL.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from trading.modes import Mode

logger = logging.getLogger(__name__)

DEFAULT_ENV_VAR = "TRADER_KILL_SWITCH"
_MAX_FILE_BYTES = 64  # the file is a marker ("", "safe" or "panic"); never read more than a few bytes

_STRICTNESS: dict[Mode, int] = {Mode.NORMAL: 0, Mode.SAFE: 1, Mode.PANIC: 2}


def strictness(mode: Mode) -> int:
    """NORMAL < SAFE < PANIC."""
    return _STRICTNESS[mode]


def stricter(a: Mode | None, b: Mode | None) -> Mode | None:
    """The stricter of two optional modes (None = no trigger)."""
    if a is None:
        return b
    if b is None:
        return a
    return a if strictness(a) >= strictness(b) else b


@dataclass(frozen=True)
class KillSwitchReading:
    """What the kill-switch sources say right now. ``mode`` None means no trigger is present."""

    mode: Mode | None
    source: str  # "file", "env", "flag", "none" or a comma-joined list when several agree
    detail: str


def _from_file(path: Path) -> tuple[Mode | None, str]:
    """Never blocks: the file's type is checked without opening it (lstat), and only a regular file is opened,
    non-blocking, for a few bytes. Anything else there (a FIFO, a device, a socket, a directory, a file too large
    to be a marker) is a trigger we cannot read: SAFE."""
    try:
        info = os.stat(path)  # follows a symlink to what it names; a dangling one is "absent"
    except FileNotFoundError:
        return None, ""
    except OSError as error:
        # Something may be there (or the directory is unreadable): we cannot prove there is no trigger.
        return Mode.SAFE, f"kill-switch file {path} unreadable ({type(error).__name__}); failing safe"
    if not stat.S_ISREG(info.st_mode):
        kind = _file_kind(info.st_mode)
        logger.warning("kill-switch path %s is a %s, not a file; treating it as SAFE", path, kind)
        return Mode.SAFE, f"kill-switch path {path} is a {kind}; failing safe"
    if info.st_size > _MAX_FILE_BYTES:
        return Mode.SAFE, f"kill-switch file {path} is {info.st_size} bytes, not a marker; failing safe"
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):  # replaced between the two looks
                return Mode.SAFE, f"kill-switch path {path} is not a regular file; failing safe"
            raw = os.read(fd, _MAX_FILE_BYTES)
        finally:
            os.close(fd)
    except OSError as error:
        return Mode.SAFE, f"kill-switch file {path} unreadable ({type(error).__name__}); failing safe"
    content = raw.decode("utf-8", errors="replace").strip().lower()
    if content in ("", "safe"):
        return Mode.SAFE, f"kill-switch file {path} present"
    if content == "panic":
        return Mode.PANIC, f"kill-switch file {path} says panic"
    logger.warning("kill-switch file %s has unrecognised content; treating it as SAFE", path)
    return Mode.SAFE, f"kill-switch file {path} has unrecognised content; failing safe"


def _file_kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "FIFO"), (stat.S_ISDIR, "directory"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "special file"


def _from_env(env: Mapping[str, str], env_var: str) -> tuple[Mode | None, str]:
    value = env.get(env_var)
    if value is None:
        return None, ""
    text = value.strip().lower()
    if text in ("", "0", "false", "no", "off"):
        return None, ""
    if text in ("1", "true", "yes", "on", "safe"):
        return Mode.SAFE, f"{env_var} set"
    if text == "panic":
        return Mode.PANIC, f"{env_var}=panic"
    logger.warning("%s has an unrecognised value; treating it as SAFE", env_var)
    return Mode.SAFE, f"{env_var} has an unrecognised value; failing safe"


def _from_flag(flag: str | None) -> tuple[Mode | None, str]:
    if flag is None:
        return None, ""
    text = flag.strip().lower()
    if text in ("", "0", "false", "off", "normal", "none"):
        return None, ""
    if text == "panic":
        return Mode.PANIC, "journal flag kill_switch=panic"
    if text != "safe":
        logger.warning("journal flag kill_switch has an unrecognised value; treating it as SAFE")
        return Mode.SAFE, "journal flag kill_switch has an unrecognised value; failing safe"
    return Mode.SAFE, "journal flag kill_switch=safe"


def read_kill_switch(
    path: Path, env: Mapping[str, str], flag: str | None, *, env_var: str = DEFAULT_ENV_VAR
) -> KillSwitchReading:
    """Combine the three sources; the strictest one wins."""
    readings = [
        ("file", *_from_file(path)),
        ("env", *_from_env(env, env_var)),
        ("flag", *_from_flag(flag)),
    ]
    triggered = [(source, mode, detail) for source, mode, detail in readings if mode is not None]
    if not triggered:
        return KillSwitchReading(mode=None, source="none", detail="no kill switch present")
    strictest: Mode | None = None
    for _, mode, _ in triggered:
        strictest = stricter(strictest, mode)
    winners = [(source, detail) for source, mode, detail in triggered if mode is strictest]
    return KillSwitchReading(
        mode=strictest,
        source=",".join(source for source, _ in winners),
        detail="; ".join(detail for _, detail in winners),
    )


def reset_allowed(reading: KillSwitchReading, target: Mode = Mode.NORMAL) -> bool:
    """May an operator reset to ``target`` now? Refused while a trigger stricter than the target is present,
    because the next poll would put the system straight back (and the trigger is an operator's intent)."""
    if reading.mode is None:
        return True
    return strictness(target) >= strictness(reading.mode)


@dataclass
class KillSwitchSource:
    """Reads all three sources each call; given to the Supervisor as its ``kill_switch``."""

    path: Path
    env: Mapping[str, str]
    get_flag: Callable[[str], str | None] | None = None
    env_var: str = DEFAULT_ENV_VAR
    flag_name: str = "kill_switch"

    def __call__(self) -> KillSwitchReading:
        flag: str | None = None
        if self.get_flag is not None:
            try:
                flag = self.get_flag(self.flag_name)
            except Exception as error:  # a journal we cannot read cannot prove "no trigger": fail safe
                logger.error("reading the kill-switch flag failed: %s", type(error).__name__)
                detail = f"kill-switch flag unreadable ({type(error).__name__}); failing safe"
                return KillSwitchReading(mode=Mode.SAFE, source="flag", detail=detail)
        return read_kill_switch(self.path, self.env, flag, env_var=self.env_var)
