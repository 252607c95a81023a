"""Write side of sharding: a token stream cut into ``shard-NNNNN.bin`` files
of at most ``pages_per_shard`` whole pages each."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import numpy as np

from gauntlet.data.manifest import ShardInfo, shard_name
from gauntlet.data.pages import file_sha256


class ShardWriter:
    """Appends tokens (already in the on-disk dtype) across shard files.

    Every shard but the last is filled to exactly ``pages_per_shard`` pages;
    :meth:`finish` cuts the last one down to whole pages (dropping the tail
    that does not fill a page) and hashes every shard."""

    def __init__(
        self, out_dir: Path, *, dtype: np.dtype, page_tokens: int, pages_per_shard: int
    ) -> None:
        if page_tokens < 1 or pages_per_shard < 1:
            raise ValueError("page_tokens and pages_per_shard must be positive")
        self.out_dir = Path(out_dir)
        self.dtype = dtype
        self.page_tokens = page_tokens
        self.shard_tokens = page_tokens * pages_per_shard
        self.written = 0  # tokens, all shards
        self._paths: list[Path] = []
        self._file: BinaryIO | None = None
        self._in_shard = 0  # tokens in the open shard

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._close()

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def write(self, tokens: np.ndarray) -> None:
        """Append ``tokens`` (ids that fit ``dtype``; the caller checks the range)."""
        tokens = tokens.astype(self.dtype, copy=False)
        while len(tokens):
            if self._file is None or self._in_shard == self.shard_tokens:
                self._next_shard()
            assert self._file is not None
            take = min(len(tokens), self.shard_tokens - self._in_shard)
            self._file.write(tokens[:take].tobytes())
            self._in_shard += take
            self.written += take
            tokens = tokens[take:]

    def _next_shard(self) -> None:
        self._close()
        path = self.out_dir / shard_name(len(self._paths))
        self._paths.append(path)
        self._file = open(path, "wb")  # noqa: SIM115 - closed on the next shard or in finish
        self._in_shard = 0

    def finish(self) -> list[ShardInfo]:
        """Cut the stream to whole pages, delete shards left empty, and
        describe (and hash) the shards that remain."""
        self._close()
        num_pages = self.written // self.page_tokens
        pages_per_shard = self.shard_tokens // self.page_tokens
        shards: list[ShardInfo] = []
        for index, path in enumerate(self._paths):
            pages = min(pages_per_shard, num_pages - index * pages_per_shard)
            if pages <= 0:  # only a partial page went here
                path.unlink()
                continue
            tokens = pages * self.page_tokens
            os.truncate(path, tokens * self.dtype.itemsize)
            shards.append(
                ShardInfo(
                    name=path.name, num_pages=pages, num_tokens=tokens, sha256=file_sha256(path)
                )
            )
        return shards
