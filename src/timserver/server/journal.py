"""The request journal: the last N answered /v4 requests, in a bounded in-memory ring.

One entry per answer: when, which app and admin, which command, the ErrorCode, the latency and
the sizes of the request and response bodies. Never the UserSig, the query string or a body:
the journal holds nothing a reader could replay.

Each process keeps its own ring. With ``serve --workers N`` (``shared_dir``: the folder the
workers share) each worker also writes a copy of its ring to a file there, at most every
``FLUSH_DELAY`` seconds and off the answer path, and a read merges every worker's copy with its
own ring: whichever worker answers a read, it shows every worker's calls (docs/console.md).
Every entry has an ``Id`` made of the worker's pid and a sequence number.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import os
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

import msgspec

from .hooks import JournalEntry as Entry  # one answered request (declared for the plugins)

DEFAULT_SIZE = 1000
MAX_SIZE = 100_000
#: With ``serve --record-bodies``: the bytes of a request and of a response body kept per entry
#: (the rest is cut), so the ring holds at most about size × 2 × MAX_RECORDED_BODY bytes.
MAX_RECORDED_BODY = 16 * 1024
#: With shared_dir: how long after a call its worker writes its ring's copy (one write for
#: every call in that time), so other workers' reads see it within about this delay.
FLUSH_DELAY = 0.2


def declared_size(declared: str | None) -> int:
    """Bytes of a request body refused before it was read: as its Content-Length says."""
    if declared and declared.isascii() and declared.isdigit():
        return min(int(declared), 2**53)
    return 0


_encoder = msgspec.json.Encoder()


class Journal:
    """The ring. ``record`` runs on every call, so it keeps the raw values in a tuple; the
    entries (cleaned texts, rounded figures, the Id) are made when someone reads them."""

    def __init__(self, size: int = DEFAULT_SIZE, *, record_bodies: bool = False,
                 shared_dir: str | None = None) -> None:
        self.size = max(0, min(int(size), MAX_SIZE))
        self.record_bodies = record_bodies
        self.pid = os.getpid()
        self.shared_dir = shared_dir
        self._ring: deque[tuple[Any, ...]] = deque(maxlen=self.size or 1)
        self._seq = 0
        self._flush_due = False
        self.rings_read = 1  # how many workers' rings the last read merged

    def record(self, method: str, path: str, command: str | None, sdkappid: int | None,
               identifier: str | None, code: int, latency_ms: float, request_bytes: int,
               response_bytes: int, now: float | None = None,
               bodies: tuple[bytes | None, bytes | None, list[str]] | None = None) -> None:
        """``bodies``: (request body, response body, the UserIDs the request names), kept
        only with ``record_bodies``."""
        if self.size == 0:
            return
        # path and identifier come clipped (``observability.clip``, by the pipeline), so that
        # the ring's memory stays bounded whatever the requests carry
        self._seq += 1
        kept = None
        if self.record_bodies and bodies is not None:
            request, response, user_ids = bodies
            kept = (request[:MAX_RECORDED_BODY] if request is not None else None,
                    response[:MAX_RECORDED_BODY] if response is not None else None,
                    tuple(user_ids))
        self._ring.append((self._seq, time.time() if now is None else now, method, path,
                           command, sdkappid, identifier, code, latency_ms, request_bytes,
                           response_bytes, kept))
        if self.shared_dir is not None and not self._flush_due:
            try:
                asyncio.get_running_loop().call_later(FLUSH_DELAY, self.flush)
                self._flush_due = True
            except RuntimeError:  # no event loop (a direct call): write now
                self.flush()

    # --- the copies of --workers N -------------------------------------------------------------

    def _file(self, pid: int) -> str:
        assert self.shared_dir is not None
        return os.path.join(self.shared_dir, f"journal-{pid}.msgpack")

    def flush(self) -> None:
        """Write this worker's ring where the other workers read it (replaced atomically)."""
        self._flush_due = False
        if self.shared_dir is None:
            return
        target = self._file(self.pid)
        try:
            with open(target + ".tmp", "wb") as out:
                out.write(msgspec.msgpack.encode(list(self._ring)))
            os.replace(target + ".tmp", target)
        except OSError:
            pass  # the journal is for watching: a full or vanished folder costs only the copy

    def _others(self) -> list[tuple[int, list[Any]]]:
        """(pid, raw entries) of the other workers' copies; those cleared (``clear``) left out."""
        if self.shared_dir is None:
            return []
        cutoffs = self._cutoffs()
        found = []
        for name in glob.glob(os.path.join(glob.escape(self.shared_dir), "journal-*.msgpack")):
            pid = os.path.basename(name)[len("journal-"):-len(".msgpack")]
            if not pid.isdigit() or int(pid) == self.pid:
                continue
            try:
                with open(name, "rb") as f:
                    raws = msgspec.msgpack.decode(f.read())
            except (OSError, msgspec.DecodeError):
                continue  # a worker gone with its copy half made: skip it
            found.append((int(pid), [raw for raw in raws
                                     if raw[1] > cutoffs.get(str(raw[5]), 0.0)]))
        return found

    def _cutoffs(self) -> dict[str, float]:
        with contextlib.suppress(OSError, ValueError):
            with open(os.path.join(self.shared_dir or "", "journal-cleared.json")) as f:
                found = json.load(f)
                return found if isinstance(found, dict) else {}
        return {}


    def entries(self, *, sdkappid: int | None = None, after: int = 0,
                limit: int | None = None, command: str | None = None,
                user_id: str | None = None, code: int | None = None,
                since: float | None = None, until: float | None = None) -> list[Entry]:
        """Entries oldest first; only the app's when ``sdkappid`` is given, and only those of
        ``command``, naming ``user_id`` (recorded bodies only), answered ``code``, in
        [``since``, ``until``]; the newest ``limit`` of them."""
        rows = [(self.pid, raw) for raw in list(self._ring)]
        if self.shared_dir is not None:
            others = self._others()
            self.rings_read = 1 + len(others)
            cutoffs = self._cutoffs()  # apps another worker cleared (``clear``)
            rows = [(pid, raw) for pid, raw in rows if raw[1] > cutoffs.get(str(raw[5]), 0.0)]
            for pid, raws in others:
                rows += [(pid, raw) for raw in raws]
            rows.sort(key=lambda row: row[1][1])  # every worker's calls, in answer order
        found = [(pid, raw) for pid, raw in rows if self._matches(
            raw, after, sdkappid, command, user_id, code, since, until)]
        return [self._entry(raw, pid) for pid, raw in (found[-limit:] if limit else found)]

    @staticmethod
    def _matches(raw: tuple[Any, ...], after: int, sdkappid: int | None, command: str | None,
                 user_id: str | None, code: int | None, since: float | None,
                 until: float | None) -> bool:
        return (raw[0] > after and (sdkappid is None or raw[5] == sdkappid)
                and (command is None or raw[4] == command)
                and (code is None or raw[7] == code)
                and (since is None or raw[1] >= since) and (until is None or raw[1] <= until)
                and (user_id is None or (raw[11] is not None and user_id in raw[11][2])))

    def clear(self, sdkappid: int) -> int:
        """Forget the app's entries; how many there were."""
        kept = [raw for raw in self._ring if raw[5] != sdkappid]
        cleared = len(self._ring) - len(kept)
        self._ring.clear()
        self._ring.extend(kept)
        if self.shared_dir is not None:  # the other workers' copies: hidden up to now
            cutoffs = self._cutoffs()
            cleared += sum(1 for _, raws in self._others() for raw in raws if raw[5] == sdkappid)
            cutoffs[str(sdkappid)] = time.time()
            with contextlib.suppress(OSError):
                target = os.path.join(self.shared_dir, "journal-cleared.json")
                with open(target + f".{self.pid}.tmp", "w") as out:
                    json.dump(cutoffs, out)
                os.replace(target + f".{self.pid}.tmp", target)
            self.flush()
        return cleared

    def _entry(self, raw: tuple[Any, ...], pid: int) -> Entry:
        (seq, when, method, path, command, sdkappid, identifier, code, latency_ms,
         request_bytes, response_bytes, kept) = raw
        recorded: dict[str, Any] = {}
        if kept is not None:
            request, response, user_ids = kept
            recorded = {"UserIDs": list(user_ids),
                        "RequestBody": _text(request), "ResponseBody": _text(response)}
        return Entry(Id=f"{pid}-{seq}", Seq=seq, Time=round(when, 3), Method=method,
                     Path=path, Command=command, SDKAppID=sdkappid, Identifier=identifier,
                     ErrorCode=code, LatencyMs=round(latency_ms, 2), RequestBytes=request_bytes,
                     ResponseBytes=response_bytes, **recorded)

    @property
    def last_seq(self) -> int:
        return self._seq

    @staticmethod
    def ndjson(entries: Iterable[Entry]) -> bytes:
        return b"".join(_encoder.encode(e) + b"\n" for e in entries)


def _text(body: bytes | None) -> str | msgspec.UnsetType:
    return msgspec.UNSET if body is None else body.decode("utf-8", "replace")
