"""Framing (spec §1–§2): a body on the TCP stream is a 4-digit zero-filled length, then the body.

:func:`parse_frame` and :func:`build_frame` for one frame, :class:`FrameDecoder` to cut a byte stream
into bodies. The body itself is :mod:`payeasy.codec.messages`.
"""

from __future__ import annotations

from typing import Final

from payeasy.codec.errors import CodecError
from payeasy.codec.fields import DIGIT_BYTES
from payeasy.codec.messages import Message, build_body, parse_body

__all__ = ["FRAME_PREFIX_LENGTH", "MAX_BODY_LENGTH", "FrameDecoder", "build_frame", "parse_frame"]

MAX_BODY_LENGTH: Final = 5297
FRAME_PREFIX_LENGTH: Final = 4


def _check_frame_length(prefix: bytes, offset: int) -> int:
    for i, byte in enumerate(prefix):
        if byte not in DIGIT_BYTES:
            raise CodecError(
                "frame length", offset, f"byte 0x{byte:02X} at offset {offset + i} is not an ASCII digit"
            )
    if len(prefix) < FRAME_PREFIX_LENGTH:
        return -1
    length = int(prefix)
    if length > MAX_BODY_LENGTH:
        raise CodecError("frame length", offset, f"body of {length} bytes is longer than {MAX_BODY_LENGTH}")
    return length


def parse_frame(data: bytes) -> Message:
    """Parse exactly one frame (4-digit length + body).

    Errors in the prefix, or a body that is not as long as the prefix says, are
    reported as field ``"frame length"`` at offset 0; errors inside the body keep
    body offsets (as :func:`parse_body`).
    """
    data = bytes(data)
    if len(data) < FRAME_PREFIX_LENGTH:
        _check_frame_length(data, 0)
        raise CodecError("frame length", 0, f"truncated: {len(data)} bytes, the length prefix is 4")
    length = _check_frame_length(data[:FRAME_PREFIX_LENGTH], 0)
    if len(data) - FRAME_PREFIX_LENGTH != length:
        raise CodecError(
            "frame length", 0, f"prefix says {length} body bytes, {len(data) - FRAME_PREFIX_LENGTH} follow"
        )
    return parse_body(data[FRAME_PREFIX_LENGTH:])


def build_frame(message: Message) -> bytes:
    """Build ``message`` as one frame: 4-digit zero-filled body length, then the body."""
    body = build_body(message)
    if len(body) > MAX_BODY_LENGTH:  # pragma: no cover - no valid message is this long
        raise CodecError("frame length", 0, f"body of {len(body)} bytes is longer than {MAX_BODY_LENGTH}")
    return f"{len(body):04d}".encode("ascii") + body


class FrameDecoder:
    """Cut a TCP byte stream into frame bodies.

    ``feed(chunk)`` returns the bodies completed by that chunk, in order; a frame
    may be split over several chunks and one chunk may hold several frames. A
    length prefix that is not four digits or exceeds 5,297 raises
    :class:`CodecError` (field ``"frame length"``, offset in the stream): the
    stream cannot be resynchronised and the connection should be closed. If
    complete bodies came before the bad prefix in the same chunk, they are
    returned first and the error is raised by the next ``feed`` (``feed(b"")``
    will do); :attr:`error` shows it at once. Once failed, the decoder stays failed.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._consumed = 0
        self.error: CodecError | None = None

    @property
    def pending(self) -> int:
        """Bytes received that do not yet make a complete frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the bodies of the frames they complete."""
        if self.error is not None:
            raise self.error
        self._buffer += data
        bodies: list[bytes] = []
        while True:
            prefix = bytes(self._buffer[:FRAME_PREFIX_LENGTH])
            try:
                length = _check_frame_length(prefix, self._consumed)
            except CodecError as exc:
                self.error = exc
                if bodies:
                    return bodies
                raise
            if length < 0 or len(self._buffer) < FRAME_PREFIX_LENGTH + length:
                return bodies
            end = FRAME_PREFIX_LENGTH + length
            bodies.append(bytes(self._buffer[FRAME_PREFIX_LENGTH:end]))
            del self._buffer[:end]
            self._consumed += end
