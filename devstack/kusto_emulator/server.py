"""The emulator's HTTP application and its command line."""

from __future__ import annotations

import argparse
import os

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def health(_: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def build_app() -> Starlette:
    return Starlette(routes=[Route("/emulator/health", health, methods=["GET"])])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack.kusto_emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument(
        "--storage-connection-string",
        default=os.environ.get("AZURE_STORAGE_CONNECTION_STRING"),
    )
    args = parser.parse_args(argv)
    os.makedirs(args.data_dir, exist_ok=True)
    uvicorn.run(build_app(), host=args.host, port=args.port, log_level="warning")
