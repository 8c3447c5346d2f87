"""The storage baseline: a plain HTTP file server under uvicorn, set up like the node's.

``PUT /files/NAME`` streams the body to a file; ``GET /files/NAME`` streams it back in
1 MiB chunks. No hashing, no quota, no fsync: what moving the bytes over loopback costs
with the same server stack (uvicorn, one process, access log off).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import uvicorn

CHUNK = 1 << 20
ROOT = Path(".")


async def _reply(send: Any, status: int, body: bytes = b"") -> None:
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    path, method = scope["path"], scope["method"]
    if path == "/healthz":
        await _reply(send, 200, b'{"status": "ok"}')
        return
    target = ROOT / path.rsplit("/", 1)[-1]
    if method == "PUT":
        with target.open("wb") as handle:
            more = True
            while more:
                message = await receive()
                handle.write(message.get("body", b""))
                more = message.get("more_body", False)
        await _reply(send, 201)
        return
    size = target.stat().st_size
    headers = [(b"content-length", str(size).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    with target.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


def main() -> None:
    global ROOT  # noqa: PLW0603 - one server a process
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args()
    ROOT = args.root
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level=args.log_level, access_log=False)


if __name__ == "__main__":
    main()
