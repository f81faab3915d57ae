"""relay_devkit.testing.TcpProxy: the cut-and-restore stand-in for a dependency going away."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from relay_devkit.testing import TcpProxy


@contextlib.asynccontextmanager
async def _echo_server() -> AsyncIterator[str]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(1024):
                writer.write(data)
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.close()


async def _round_trip(proxy: TcpProxy, text: bytes) -> tuple[asyncio.StreamReader, bytes]:
    reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
    writer.write(text)
    await writer.drain()
    return reader, await asyncio.wait_for(reader.readexactly(len(text)), 5)


async def test_it_forwards_refuses_while_stopped_and_drops_open_connections() -> None:
    async with _echo_server() as target, TcpProxy(target) as proxy:
        reader, echoed = await _round_trip(proxy, b"hello")
        assert echoed == b"hello"

        await proxy.drop_connections()  # the open connection is reset, the port still answers
        assert await _closed(reader)
        assert (await _round_trip(proxy, b"again"))[1] == b"again"

        await proxy.stop()
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection(proxy.host, proxy.port)

        await proxy.start()  # the same port again
        assert (await _round_trip(proxy, b"back"))[1] == b"back"


async def _closed(reader: asyncio.StreamReader) -> bool:
    try:
        return await asyncio.wait_for(reader.read(), 5) == b""
    except ConnectionResetError:
        return True


def test_url_for_keeps_the_credentials_and_path() -> None:
    proxy = TcpProxy("db.internal:5432", port=6000)
    assert (
        proxy.url_for("postgresql://relay:secret@db.internal:5432/relay?sslmode=disable")
        == "postgresql://relay:secret@127.0.0.1:6000/relay?sslmode=disable"
    )
    assert proxy.url_for("http://127.0.0.1:5055") == "http://127.0.0.1:6000"
