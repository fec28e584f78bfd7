#!/usr/bin/env python3
"""A TCP relay that delays every chunk by a fixed time each way, in order: PostgreSQL on
another host, for tests/load/run.sh (PG_DELAY_US). Not a CI test.

    python3 tests/load/pg_delay.py LISTEN_PORT TARGET_PORT DELAY_US
"""
import asyncio
import sys
import time


async def relay(reader, writer, delay):
    queue = asyncio.Queue()

    async def read():
        while True:
            data = await reader.read(65536)
            queue.put_nowait((time.monotonic() + delay, data))
            if not data:
                return

    async def deliver():
        while True:
            due, data = await queue.get()
            if not data:
                writer.close()
                return
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()

    await asyncio.gather(read(), deliver(), return_exceptions=True)


async def main():
    listen, target, delay = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]) / 1e6

    async def accept(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            relay(client_reader, server_writer, delay),
            relay(server_reader, client_writer, delay),
            return_exceptions=True,
        )

    server = await asyncio.start_server(accept, "127.0.0.1", listen)
    async with server:
        await server.serve_forever()


asyncio.run(main())
