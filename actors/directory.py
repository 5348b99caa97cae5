"""An address: a name in the Supervisor's :class:`~actors.base.ActorDirectory` that survives restarts.

Actors hold addresses, never refs: a restarted actor is a new pykka instance with a new ref. A message to an
actor that is down (restarting) is held by the directory and handed to the new instance; only a message nobody
will take (the actor was given up or is shut down, or a price tick) is dropped, and logged here.
"""

from __future__ import annotations

import logging
from typing import Any

from actors.base import ActorDirectory

log = logging.getLogger("following.directory")


class Address:
    def __init__(self, directory: ActorDirectory, name: str) -> None:
        self._directory = directory
        self.name = name

    def tell(self, message: Any) -> bool:
        delivered = self._directory.tell(self.name, message)
        if not delivered:
            log.warning("%s is down; dropped %s", self.name, type(message).__name__)
        return delivered

    def __repr__(self) -> str:
        return f"Address({self.name!r})"
