"""Azurite, Microsoft's Azure Storage emulator (blob, queue, table), from the npm registry.

The version is pinned by `package.json` / `package-lock.json` beside this file and installed
with `npm ci` into `devstack/node_modules`, once: a later install is skipped while the
installed version matches the lock.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobServiceClient

from devstack.process import Server, StackError

PACKAGE_DIR = Path(__file__).parent
LOCK = PACKAGE_DIR / "package-lock.json"
ENTRY_POINT = PACKAGE_DIR / "node_modules" / "azurite" / "dist" / "src" / "azurite.js"
HEALTH_CONTAINER = "devstack-health"

ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key: public, documented by Microsoft, not a secret.
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def connection_string(blob_port: int, queue_port: int, table_port: int) -> str:
    """Connection string for the emulator account with explicit path-style endpoints."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{blob_port}/{ACCOUNT};"
        f"QueueEndpoint=http://127.0.0.1:{queue_port}/{ACCOUNT};"
        f"TableEndpoint=http://127.0.0.1:{table_port}/{ACCOUNT};"
    )


def _pinned_version() -> str:
    lock = json.loads(LOCK.read_text())
    return str(lock["packages"]["node_modules/azurite"]["version"])


def _installed_version() -> str | None:
    manifest = ENTRY_POINT.parents[2] / "package.json"
    try:
        return str(json.loads(manifest.read_text())["version"])
    except FileNotFoundError:
        return None


def install() -> bool:
    """`npm ci` the pinned Azurite unless it is installed already. True when it installed."""
    if _installed_version() == _pinned_version():
        return False
    npm = shutil.which("npm")
    if npm is None:
        raise StackError("azurite: `npm` is not on PATH; Node.js 20 or newer is needed")
    result = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=PACKAGE_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise StackError(
            f"azurite: `npm ci` in {PACKAGE_DIR} failed (exit {result.returncode}):\n"
            f"{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )
    return True


def blob_put(storage_connection_string: str) -> None:
    """Write one blob (creating the health container if missing); raises when that fails."""
    # No SDK retries: the stack's own wait loop retries, and a probe must answer quickly.
    service = BlobServiceClient.from_connection_string(
        storage_connection_string, retry_total=0, connection_timeout=2, read_timeout=5
    )
    with service:
        container = service.get_container_client(HEALTH_CONTAINER)
        try:
            container.create_container()
        except ResourceExistsError:
            pass
        container.upload_blob("probe", b"ok", overwrite=True)


def azurite_server(
    location: Path, log_file: Path, blob_port: int, queue_port: int, table_port: int
) -> Server:
    """Azurite as a stack server, keeping its data in `location`."""
    node = shutil.which("node") or "node"

    def prepare() -> None:
        if shutil.which("node") is None:
            raise StackError("azurite cannot start: `node` is not on PATH (Node.js 20 needed)")
        if not ENTRY_POINT.exists():
            raise StackError(f"azurite cannot start: {ENTRY_POINT} missing; run fetch first")
        location.mkdir(parents=True, exist_ok=True)

    command = [
        node,
        str(ENTRY_POINT),
        "--silent",
        "--location",
        str(location),
        "--blobHost",
        "127.0.0.1",
        "--queueHost",
        "127.0.0.1",
        "--tableHost",
        "127.0.0.1",
        "--blobPort",
        str(blob_port),
        "--queuePort",
        str(queue_port),
        "--tablePort",
        str(table_port),
        "--disableTelemetry",
        "--skipApiVersionCheck",
        "--loose",
    ]
    storage = connection_string(blob_port, queue_port, table_port)
    return Server(
        name="azurite",
        command=command,
        ports={"blob": blob_port, "queue": queue_port, "table": table_port},
        health=lambda: blob_put(storage),
        log_file=log_file,
        data_dir=location,
        prepare=prepare,
    )
