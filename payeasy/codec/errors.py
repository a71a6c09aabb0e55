"""The codec's one exception, :class:`CodecError`: which field, at which byte offset, what is wrong."""

from __future__ import annotations

__all__ = ["CodecError"]


class CodecError(ValueError):
    """Bytes or values that do not follow the line protocol.

    ``field`` names the field (``"H1 message type"``, ``"element 4 amount"``,
    ``"trailer 合計金額"``), ``offset`` is the byte offset where that field starts
    (in the body for messages, in the file for batch files, in the stream for
    :class:`FrameDecoder`), ``record`` is the 1-based record number in a batch
    file (``None`` elsewhere), ``message`` says what is wrong.
    """

    def __init__(self, field: str, offset: int, message: str, *, record: int | None = None) -> None:
        self.field = field
        self.offset = offset
        self.message = message
        self.record = record
        super().__init__(field, offset, message)

    def __str__(self) -> str:
        where = f"record {self.record}, " if self.record is not None else ""
        return f"{where}{self.field} at byte offset {self.offset}: {self.message}"

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_error, (self.field, self.offset, self.message, self.record))


def _rebuild_error(field: str, offset: int, message: str, record: int | None) -> CodecError:
    return CodecError(field, offset, message, record=record)
