"""A minimal aioquic HTTP/3 server and client on loopback, each writing qlog with QuicFileLogger.

aioquic's own examples (http3_server.py / http3_client.py) live in its sdist and need starlette and
wsproto; this script uses the same aioquic API (QuicFileLogger is what their --quic-log / -q use).

usage: aioquic_h3.py CERT KEY SERVER_QLOG_DIR CLIENT_QLOG_DIR REQUESTS
"""
import asyncio
import sys

from aioquic.asyncio import QuicConnectionProtocol, connect, serve
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ProtocolNegotiated
from aioquic.quic.logger import QuicFileLogger

BODY = b"x" * 20000


class Server(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.h3 = None

    def quic_event_received(self, event):
        if isinstance(event, ProtocolNegotiated):
            self.h3 = H3Connection(self._quic)
        if self.h3 is None:
            return
        for ev in self.h3.handle_event(event):
            if isinstance(ev, HeadersReceived) and ev.stream_ended:
                self.h3.send_headers(ev.stream_id, [(b":status", b"200"), (b"content-type", b"text/plain")])
                self.h3.send_data(ev.stream_id, BODY, end_stream=True)
                self.transmit()


class Client(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic)
        self.waiting = {}

    def quic_event_received(self, event):
        for ev in self.h3.handle_event(event):
            if isinstance(ev, (HeadersReceived, DataReceived)) and ev.stream_ended:
                fut = self.waiting.pop(ev.stream_id, None)
                if fut is not None and not fut.done():
                    fut.set_result(True)

    async def get(self, authority, path):
        stream_id = self._quic.get_next_available_stream_id()
        self.h3.send_headers(
            stream_id,
            [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", authority.encode()), (b":path", path.encode())],
            end_stream=True,
        )
        fut = asyncio.get_running_loop().create_future()
        self.waiting[stream_id] = fut
        self.transmit()
        await asyncio.wait_for(fut, 10)


async def main():
    cert, key, server_dir, client_dir, requests = sys.argv[1:6]
    server_conf = QuicConfiguration(is_client=False, alpn_protocols=H3_ALPN, quic_logger=QuicFileLogger(server_dir))
    server_conf.load_cert_chain(cert, key)
    server = await serve("127.0.0.1", 0, configuration=server_conf, create_protocol=Server)
    port = server._transport.get_extra_info("sockname")[1]
    client_conf = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, quic_logger=QuicFileLogger(client_dir))
    client_conf.verify_mode = False
    async with connect("127.0.0.1", port, configuration=client_conf, create_protocol=Client) as client:
        for i in range(int(requests)):
            await client.get(f"127.0.0.1:{port}", f"/file{i}")
    await asyncio.sleep(0.2)
    server.close()
    print("ok", port)


asyncio.run(asyncio.wait_for(main(), 30))
