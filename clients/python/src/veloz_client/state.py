"""Report stream positions: the last stream_seq processed per stream, optionally in a file.

docs/protocol.md, section 5a: a client keeps, per stream, the last `stream_seq` it has
processed and sends them as `Logon.resume_after`. The file is JSON,
`{"account": 1, "last": [12, 0]}`, replaced atomically (write, fsync, rename) after every
report, so a crash never leaves half a file.
"""
from __future__ import annotations

import json
import logging
import os
from typing import List, Optional

from .messages import ExecutionReport

__all__ = ["StateError", "StreamState"]

log = logging.getLogger("veloz_client")


class StateError(Exception):
    """The state file is unusable (another account's, or not a state file at all)."""


class StreamState:
    """The last stream_seq seen per report stream; kept in the JSON file `path` when set.

    A stream whose last report is not known (no state file yet, no resend asked for) takes
    its first report as the starting point; after that every report must be last + 1 on its
    stream: a larger one is a gap (warned about), a smaller or equal one a duplicate."""

    def __init__(self, path: Optional[str], account: int):
        self.path = None if path is None else os.fspath(path)
        self.account = account
        self.last: List[int] = []
        self.known: List[bool] = []
        self.loaded = False
        if self.path is not None and os.path.exists(self.path):
            self._load()

    def _load(self) -> None:
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            raise StateError(f"cannot read state file {self.path}: {e}") from e
        if not isinstance(data, dict) or "account" not in data or "last" not in data:
            raise StateError(f"state file {self.path} is not a veloz_client state file "
                             '(expected {"account": N, "last": [...]})')
        if not isinstance(data["account"], int) or data["account"] != self.account:
            raise StateError(f"state file {self.path} is for account {data['account']}, not "
                             f"account {self.account}: use the account's own state file")
        last = data["last"]
        if not isinstance(last, list) or not all(
                isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in last):
            raise StateError(f"state file {self.path}: 'last' must be a list of stream_seqs "
                             f"(integers >= 0), got {last!r}")
        self.last = list(last)
        self.known = [True] * len(last)
        self.loaded = True

    def resume_after(self, always: bool) -> Optional[List[int]]:
        """The Logon's resume_after: the loaded positions; with `always` and none loaded, an
        empty list (resend everything retained); else None (no resend)."""
        if self.loaded:
            return list(self.last)
        if always:
            self.start_from_zero()
            return []
        return None

    def start_from_zero(self) -> None:
        """A resend of everything is asked for: every stream counts from 0."""
        self.loaded = True
        self.known = [True] * len(self.last)

    def ensure(self, streams: int) -> None:
        while len(self.last) < streams:
            self.last.append(0)
            # A stream the Logon's resume_after did not name counts as 0 (all resent).
            self.known.append(self.loaded)

    def accept(self, report: ExecutionReport) -> bool:
        """Record a report; False when it is a duplicate (seen before) to be ignored."""
        seq = report.stream_seq
        if not seq:
            return True  # a gateway reject: in no stream
        stream = report.stream
        self.ensure(stream + 1)
        last = self.last[stream]
        if self.known[stream]:
            if seq <= last:
                log.info("note: duplicate report on stream %d (stream_seq %d, last seen %d): "
                         "ignored", stream, seq, last)
                return False
            if seq != last + 1:
                lost = (f"report {last + 1}" if seq == last + 2
                        else f"reports {last + 1}..{seq - 1}")
                log.warning("warning: gap on stream %d: stream_seq %d follows %d; %s not "
                            "received", stream, seq, last, lost)
        self.last[stream] = seq
        self.known[stream] = True
        self.save()
        return True

    def restart(self, stream: int, last: int) -> None:
        """The engine's stream ends before what the state says: start over from `last`."""
        self.ensure(stream + 1)
        self.last[stream] = last
        self.known[stream] = True
        self.save()

    def save(self) -> None:
        if self.path is None:
            return
        tmp = f"{self.path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"account": self.account, "last": self.last}, f)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
