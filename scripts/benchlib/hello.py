"""The baseline server: a FastAPI hello-world POST endpoint, run like the node's API.

Same uvicorn settings as ``node.server.run``: one process, 127.0.0.1, the given log
level, access log off. The endpoint parses the JSON body (as the node's does) and
answers 202 with a small JSON object.
"""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn
from fastapi import Body, FastAPI

app = FastAPI()


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/hello", status_code=202)
async def hello(body: dict[str, Any] = Body(...)) -> dict[str, str]:  # noqa: B008
    return {"txid": str(body.get("nonce")), "status": "pending"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
