"""One local S3 server per node, like real operators each with their own bucket.

Each node gets ``rclone serve s3`` (a real S3 implementation that checks SigV4
signatures) on its own port and directory, with two key pairs: a write pair the
node keeps and a read pair it publishes in its chain commitment. (rclone cannot
make a key read-only, so locally both pairs may write; the protocol never relies
on it.) Settings reach the node as ``GAUNTLET_STORAGE__*`` environment variables,
so secrets never appear on a command line.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from gauntlet.localnet.processes import ProcessGroup
from gauntlet.storage.local_servers import free_port, rclone_serve_argv, wait_for_http

STARTUP_TIMEOUT = 30.0


class StoreStartError(RuntimeError):
    pass


def start_node_stores(
    run: Path, group: ProcessGroup, names: list[str]
) -> dict[str, dict[str, Any]]:
    """Start a server per node; per name: ``root``, ``bucket`` and the node's ``env``."""
    stores: dict[str, dict[str, Any]] = {}
    for name in names:
        root, bucket, port = run / "s3" / name, f"gauntlet-{name}", free_port()
        (root / bucket).mkdir(parents=True, exist_ok=True)
        # Recognisable shapes (GW..., gws...), so a test can prove no log or file names them.
        write = (f"GW{secrets.token_hex(8).upper()}", f"gws{secrets.token_hex(20)}")
        read = (f"GR{secrets.token_hex(8).upper()}", secrets.token_hex(20))
        child = group.start(f"s3-{name}", rclone_serve_argv(root, port, [write, read]))
        url = f"http://127.0.0.1:{port}"
        if not wait_for_http(url, child.process, STARTUP_TIMEOUT):
            raise StoreStartError(f"the S3 server of {name} did not start; see {child.log_path}")
        stores[name] = {
            "root": root,
            "bucket": bucket,
            "env": {
                "GAUNTLET_STORAGE__BACKEND": "s3",
                "GAUNTLET_STORAGE__ENDPOINT": url,
                "GAUNTLET_STORAGE__REGION": "us-east-1",
                "GAUNTLET_STORAGE__BUCKET": bucket,
                "GAUNTLET_STORAGE__PATH_STYLE": "true",
                "GAUNTLET_STORAGE__WRITE_ACCESS_KEY_ID": write[0],
                "GAUNTLET_STORAGE__WRITE_SECRET_ACCESS_KEY": write[1],
                "GAUNTLET_STORAGE__READ_ACCESS_KEY_ID": read[0],
                "GAUNTLET_STORAGE__READ_SECRET_ACCESS_KEY": read[1],
            },
        }
    return stores
