"""The APNs transport: aioapns 4.0's HTTP/2 connection protocol with six adjustments,
all by subclassing it (`protocol_class`) and h2's connection (`_Connection`):

- aioapns never returns HTTP/2 receive-window credit for response bodies, so after ~64 KiB
  of error bodies (≈1,300 `Unregistered` answers, a fan-out to stale tokens) later
  responses never arrive; we acknowledge every data frame;
- an answer to a send that already timed out made it set a result on a cancelled future,
  and the error closed the connection with every push in flight; such answers are dropped;
- header values go out as plain HPACK literals (no Huffman coding) and never into the
  dynamic table, and h2 does not re-validate the headers aioapns builds (`_LiteralEncoder`);
- h2 counts the open streams before each new one by walking every stream it still holds
  (and purging the closed ones), ~150 at our concurrency, a tenth of a push's CPU; a
  stream is purged when its response ends instead, so the stream count is the bound;
- aioapns writes a body without waiting for send credit: when the server's window cannot
  take it, h2 raises FlowControlError and aioapns sleeps 1 s and retries on a new stream
  (leaving the first one open); such a body waits instead and goes out, in order, as the
  server's WINDOW_UPDATEs arrive (150 pushes in flight exhaust the default 64 KiB window),
  unless its send timed out meanwhile: then its stream is reset, so a retry is no duplicate;
- host and port come from class attributes; `APNS_HOST` overrides them for an emulator
  or a proxy (and `APNS_CA_FILE` adds a CA to trust).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.exceptions import NoSuchStreamError, ProtocolError
from hpack import Encoder, HeaderTuple
from hpack.hpack import INDEX_NEVER, INDEX_NONE
from hpack.table import HeaderTable

_STATIC = {field: index for index, field in enumerate(HeaderTable.STATIC_TABLE, 1)}
_STATIC_NAMES = {name: index for (name, _), index in reversed(_STATIC.items())}
_PER_PUSH = {b":path", b"apns-id", b"apns-collapse-id", b"apns-expiration"}


class _LiteralEncoder(Encoder):
    """HPACK without Huffman coding or the dynamic table: a field is an index into the
    static table or a literal "without indexing" ("never indexed" for those h2 marks
    sensitive: the JWT). No field's bytes depend on earlier header blocks, so those
    repeated on every push (method, host, topic, priority, push type, JWT) are encoded
    once. hpack's pure-Python Huffman coder (it coded the JWT anew on every push) was a
    fifth of a push's CPU; its table search and update for every field, 13 % more."""

    def __init__(self) -> None:
        super().__init__()
        self._fields: dict[tuple[bytes, bytes, bool], bytes] = {}

    def encode(self, headers: Any, huffman: bool = True) -> bytes:
        block = []
        if self.header_table.resized:  # the peer's SETTINGS_HEADER_TABLE_SIZE changed
            block.append(self._encode_table_size_change())
            self.header_table.resized = False
        for header in headers:  # (bytes, bytes) tuples: h2 normalizes before encoding
            key = (header[0], header[1], isinstance(header, HeaderTuple) and not header.indexable)
            field = self._fields.get(key)
            if field is None:
                field = self._field(*key)
                if key[0] not in _PER_PUSH:
                    if len(self._fields) >= 64:  # a JWT renewed, another topic: stay small
                        self._fields.clear()
                    self._fields[key] = field
            block.append(field)
        return b"".join(block)

    def _field(self, name: bytes, value: bytes, sensitive: bool) -> bytes:
        if not sensitive and (index := _STATIC.get((name, value))):
            return self._encode_indexed(index)
        indexbit = INDEX_NEVER if sensitive else INDEX_NONE
        if index := _STATIC_NAMES.get(name):
            return self._encode_indexed_literal(index, value, indexbit)
        return self._encode_literal(name, value, indexbit)


class _Connection(H2Connection):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = _LiteralEncoder()
        self.config.validate_outbound_headers = False
        self.waiting_bodies: deque[tuple[int, bytes, bool]] = deque()

    def send_data(
        self, stream_id: int, data: bytes, end_stream: bool = False, pad_length: Any = None
    ) -> None:
        if self.waiting_bodies or self.local_flow_control_window(stream_id) < len(data):
            self.waiting_bodies.append((stream_id, data, end_stream))
            return
        super().send_data(stream_id, data, end_stream=end_stream, pad_length=pad_length)

    def send_waiting_bodies(self, abandoned: Callable[[int], bool]) -> list[int]:
        """Send, in order, the waiting bodies the window now takes. A body whose send was
        given up meanwhile (it timed out: the push is retried) is never sent, or the retry
        would be a second push: its stream is reset instead. Returns the reset streams."""
        reset: list[int] = []
        while self.waiting_bodies:
            stream_id, body, end_stream = self.waiting_bodies[0]
            try:
                if abandoned(stream_id):
                    self.reset_stream(stream_id, ErrorCodes.CANCEL)
                    reset.append(stream_id)
                elif self.local_flow_control_window(stream_id) < len(body):
                    break
                else:
                    super().send_data(stream_id, body, end_stream=end_stream)
            except NoSuchStreamError:  # the server reset it meanwhile; its answer says why
                pass
            except ProtocolError:  # the connection is closing: nothing more goes out on it
                self.waiting_bodies.clear()
                break
            self.waiting_bodies.popleft()
        return reset

    @property
    def open_outbound_streams(self) -> int:
        # `streams` holds the open streams (and the rare reset one, see forget_stream): its
        # size bounds the count; near the server's limit, h2's exact walk (which also
        # purges what forget_stream left) decides, as before.
        if len(self.streams) < self.remote_settings.max_concurrent_streams:
            return len(self.streams)
        return super().open_outbound_streams

    def forget_stream(self, stream_id: int) -> None:
        """What h2's walk does to a closed stream (aioapns ends every request it sends)."""
        stream = self.streams.get(stream_id)
        if stream is not None and stream.closed:
            del self.streams[stream_id]
            self._closed_streams[stream_id] = stream.closed_by


def protocol_class(base: type, host: str | None, port: int | None) -> type:
    def __init__(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[no-untyped-def]
        base.__init__(self, *args, **kwargs)
        self.conn = _Connection()  # before connection_made, which initiates the connection

    def data_received(self, data: bytes) -> None:  # type: ignore[no-untyped-def]
        base.data_received(self, data)  # the events, then a flush
        if self.conn.waiting_bodies:  # the WINDOW_UPDATEs among them may let bodies go
            for stream_id in self.conn.send_waiting_bodies(lambda s: _abandoned(self, s)):
                self.requests.pop(self.request_streams.pop(stream_id, None), None)
                self.free_channels.release()  # aioapns releases on a stream's end only
            self.flush()

    def on_stream_ended(self, stream_id: int) -> None:  # type: ignore[no-untyped-def]
        base.on_stream_ended(self, stream_id)
        self.conn.forget_stream(stream_id)
        # aioapns drops a stream's entries only when an error body arrives (which comes
        # before the end of its stream): a connection kept one per push it ever delivered.
        notification_id = self.request_streams.pop(stream_id, None)
        self.request_statuses.pop(notification_id, None)  # an error answer without a body

    def on_data_received(self, raw_data: bytes, stream_id: int) -> None:  # type: ignore[no-untyped-def]
        base.on_data_received(self, raw_data, stream_id)
        # Return the flow-control credit aioapns forgets; sent by its flush() after this event.
        self.conn.acknowledge_received_data(len(raw_data), stream_id)

    def on_response_received(self, headers: dict[bytes, bytes]) -> None:  # type: ignore[no-untyped-def]
        # A send that timed out (its timeout cancelled the future) may still be answered;
        # aioapns would call set_result on the cancelled future, and the InvalidStateError
        # from inside the protocol callback closes the connection with every other push in
        # flight on it.
        _forget_abandoned(self, headers.get(b"apns-id", b"").decode("utf8"))
        base.on_response_received(self, headers)

    def connection_lost(self, exc: Exception | None) -> None:  # type: ignore[no-untyped-def]
        for notification_id in [n for n, f in self.requests.items() if f.done()]:
            del self.requests[notification_id]
        base.connection_lost(self, exc)

    attributes: dict[str, object] = {
        "__init__": __init__,
        "data_received": data_received,
        "on_data_received": on_data_received,
        "on_stream_ended": on_stream_ended,
        "on_response_received": on_response_received,
        "connection_lost": connection_lost,
    }
    if host:
        attributes["APNS_SERVER"] = host
    if port:
        attributes["APNS_PORT"] = port
    return type(f"Messenger{base.__name__}", (base,), attributes)


def _forget_abandoned(protocol: object, notification_id: str) -> None:
    """Drop the request of an answer nobody waits for any more (its future is done), so
    that aioapns treats the answer as one for an unknown request (a warning, no error)."""
    requests = protocol.requests  # type: ignore[attr-defined]
    future = requests.get(notification_id)
    if future is not None and future.done():
        del requests[notification_id]


def _abandoned(protocol: object, stream_id: int) -> bool:
    """Whether nobody waits for this stream's answer any more (its send timed out)."""
    notification_id = protocol.request_streams.get(stream_id)  # type: ignore[attr-defined]
    future = protocol.requests.get(notification_id)  # type: ignore[attr-defined]
    return future is None or future.done()
