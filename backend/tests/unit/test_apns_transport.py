"""The APNs client's HTTP/2 connection, against an h2 server (which validates what it
receives): the header block decodes to the headers aioapns built, the JWT is never
indexed, a header-table size change is signalled, and answered streams are purged."""

from __future__ import annotations

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import DataReceived, RequestReceived, StreamEnded, StreamReset
from h2.settings import SettingCodes
from hpack import NeverIndexedHeaderTuple

from backend.app.messenger.push.providers.apns_transport import _Connection


def _headers(i: int) -> list[tuple[str, str]]:
    return [
        (":method", "POST"),
        (":scheme", "https"),
        (":path", f"/3/device/{i:064x}"),
        ("host", "api.push.apple.com"),
        ("apns-id", f"00000000-0000-0000-0000-{i:012d}"),
        ("apns-topic", "com.example.app"),
        ("apns-priority", "10"),
        ("apns-collapse-id", "c" * 32),
        ("apns-push-type", "alert"),
        ("authorization", "bearer " + "j" * 150),
    ]


def test_requests_decode_to_the_same_headers_and_answered_streams_are_purged() -> None:
    client, server = _Connection(), H2Connection(H2Configuration(client_side=False))
    client.initiate_connection()
    server.initiate_connection()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    for i in range(40):
        if i == 20:  # the server shrinks its header table: the next block must say so
            server.update_settings({SettingCodes.HEADER_TABLE_SIZE: 0})
            client.receive_data(server.data_to_send())
        server.receive_data(client.data_to_send())
        stream_id = 2 * i + 1
        client.send_headers(stream_id, _headers(i))
        client.send_data(stream_id, b'{"aps":{}}', end_stream=True)
        (request,) = [
            e for e in server.receive_data(client.data_to_send()) if isinstance(e, RequestReceived)
        ]
        assert [(n.decode(), v.decode()) for n, v in request.headers] == _headers(i)
        assert isinstance(request.headers[-1], NeverIndexedHeaderTuple)
        assert client.open_outbound_streams == 1
        server.send_headers(stream_id, [(":status", "200")], end_stream=True)
        client.receive_data(server.data_to_send())
        client.forget_stream(stream_id)
        assert client.streams == {}
        assert client.open_outbound_streams == 0


def test_a_header_table_size_change_is_signalled_first() -> None:
    encoder = _Connection().encoder
    encoder.header_table_size = 0  # what h2 does when the server's SETTINGS lower it
    assert encoder.encode([(b":method", b"POST")]) == b"\x20\x83"  # size update 0, index 3
    assert encoder.encode([(b":method", b"POST")]) == b"\x83"


def _connected() -> tuple[_Connection, H2Connection]:
    client, server = _Connection(), H2Connection(H2Configuration(client_side=False))
    client.initiate_connection()
    server.initiate_connection()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    server.update_settings({SettingCodes.MAX_CONCURRENT_STREAMS: 1000})  # as APNs does
    client.receive_data(server.data_to_send())
    return client, server


def test_bodies_beyond_the_servers_window_wait_for_its_credit_and_arrive_in_order() -> None:
    client, server = _connected()
    body = b'{"aps":{"alert":"' + b"x" * 400 + b'"}}'
    sent = 200  # 200 x 420 bytes: beyond the default 64 KiB connection window

    for i in range(sent):
        client.send_headers(2 * i + 1, _headers(i))
        client.send_data(2 * i + 1, body, end_stream=True)  # never FlowControlError
    assert client.waiting_bodies

    arrived: list[int] = []
    while len(arrived) < sent:
        events = server.receive_data(client.data_to_send())
        for event in events:
            if isinstance(event, DataReceived):
                server.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            if isinstance(event, StreamEnded):
                arrived.append(event.stream_id)
        client.receive_data(server.data_to_send())  # the WINDOW_UPDATEs
        assert client.send_waiting_bodies(lambda stream_id: False) == []
    assert arrived == [2 * i + 1 for i in range(sent)]
    assert not client.waiting_bodies


def test_a_waiting_body_whose_send_timed_out_is_never_sent_its_stream_is_reset() -> None:
    client, server = _connected()
    body = b'{"aps":{"alert":"' + b"x" * 400 + b'"}}'
    for i in range(200):  # beyond the 64 KiB window: the last ones wait
        client.send_headers(2 * i + 1, _headers(i))
        client.send_data(2 * i + 1, body, end_stream=True)
    waiting = {stream_id for stream_id, _, _ in client.waiting_bodies}
    events = server.receive_data(client.data_to_send())
    for event in events:
        if isinstance(event, DataReceived):
            server.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
    client.receive_data(server.data_to_send())

    reset = client.send_waiting_bodies(lambda stream_id: True)  # every send gave up

    assert set(reset) == waiting
    later = server.receive_data(client.data_to_send())
    assert {e.stream_id for e in later if isinstance(e, StreamReset)} == waiting
    assert not any(isinstance(e, DataReceived) for e in later)
