"""Frames between the server and a worker: a 4-byte big-endian length, then a JSON header line, then
the raw sections the header lists (`sections`: their lengths, in order).

Sections carry JSON the worker already serialised (a determination, a log record), so the server
passes them on without parsing them again.
"""

from __future__ import annotations

import json
import struct
from typing import Any

MAX_FRAME = 256 * 1024 * 1024
_LENGTH = struct.Struct(">I")


class ProtocolError(Exception):
    """A frame that does not follow this module's format: the peer is broken and must be replaced."""


def encode(header: dict[str, Any], *sections: bytes) -> bytes:
    head = json.dumps({**header, "sections": [len(s) for s in sections]}, separators=(",", ":")).encode()
    payload = b"".join((head, b"\n", *sections))
    if len(payload) > MAX_FRAME:
        raise ProtocolError(f"a frame of {len(payload)} bytes is over the limit of {MAX_FRAME}")
    return _LENGTH.pack(len(payload)) + payload


def length(prefix: bytes) -> int:
    (size,) = _LENGTH.unpack(prefix)
    if size > MAX_FRAME:
        raise ProtocolError(f"a frame of {size} bytes is over the limit of {MAX_FRAME}")
    return int(size)


PREFIX = _LENGTH.size


def decode(payload: bytes) -> tuple[dict[str, Any], list[bytes]]:
    head, sep, rest = payload.partition(b"\n")
    if not sep:
        raise ProtocolError("a frame without a header line")
    try:
        header = json.loads(head)
    except ValueError as exc:
        raise ProtocolError("a frame whose header is not JSON") from exc
    sizes = header.pop("sections", None) if isinstance(header, dict) else None
    if not isinstance(sizes, list) or not all(isinstance(n, int) and n >= 0 for n in sizes) or sum(sizes) != len(rest):
        raise ProtocolError("a frame whose sections do not add up")
    sections, at = [], 0
    for n in sizes:
        sections.append(rest[at : at + n])
        at += n
    return header, sections
