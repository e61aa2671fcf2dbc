"""``python -m devstack.schema_registry --host 127.0.0.1 --port 8081 --data-dir DIR``."""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn

from devstack.schema_registry.app import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.schema_registry",
        description="A small Confluent-compatible schema registry for local development.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--data-dir", type=Path, required=True, help="where registry.sqlite3 lives")
    args = parser.parse_args(argv)
    uvicorn.run(create_app(args.data_dir), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
