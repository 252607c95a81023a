"""A gather's memory does not grow with the number of peers (issue 15).

64 registered miners each upload a validly sealed object of the maximum size whose payload
is junk (the cheapest way to make a validator hold bytes: it passes every check until the
payload is decoded, a window later). The observer downloads all of them during the window,
the reveals come, and the window is judged. Before the spool every object stayed in memory
from its download to the judgement: 64 × the cap. Now downloads stream to disk and at most
``payloads_in_flight`` objects are in memory while their headers are checked.

Python's own allocations (bytes, numpy) are measured with ``tracemalloc``: deterministic,
and the only place these objects live.
"""

from __future__ import annotations

import asyncio
import os
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

import torch
from node_helpers import NETUID, ScriptedChain, make_miner, upload_sealed

from gauntlet.compress.codec import DenseCodec, param_shapes
from gauntlet.model import build_model
from gauntlet.node.gather import Decoder, judge_window
from gauntlet.node.observer import MAX_CONCURRENT_FETCHES, Observer
from gauntlet.node.reveals import collect_reveals, publish_reveal
from gauntlet.node.spool import Spool
from gauntlet.storage.atomic_file import CHUNK_BYTES
from protocol.container import Limits
from protocol.windows import Timeline

WINDOW = 3
TIMELINE = Timeline(blocks_per_window=10, grace_blocks=1, reveal_blocks=2, record_blocks=5)
CAP = 1 << 20
PEERS = 64
IN_FLIGHT = 2
MiB = 1 << 20


class StaticPeers:
    def __init__(self, peers: list) -> None:
        self.peers = peers

    async def miners(self, chain: ScriptedChain) -> tuple[None, list]:
        return None, self.peers


def test_a_window_of_64_maximum_size_uploads_is_judged_in_bounded_memory(tmp_path: Path) -> None:
    model = build_model("tiny", seed=0)
    limits = Limits(max_bytes=CAP)
    miners = [make_miner(tmp_path, uid) for uid in range(1, PEERS + 1)]
    junk_size = CAP - 4096  # sealed: payload + tag + a signed header, just under the cap

    async def scenario() -> tuple[int, list, int]:
        for m in miners:
            await upload_sealed(m, WINDOW, os.urandom(junk_size))
        chain = ScriptedChain(block=35)
        rt = SimpleNamespace(
            chain=chain,
            peers=StaticPeers([m.peer for m in miners]),
            config=SimpleNamespace(chain=SimpleNamespace(netuid=NETUID)),
            limits=limits,
        )
        spool = Spool(tmp_path / "spool", payloads_in_flight=IN_FLIGHT)
        # Rounds here stand for a whole upload phase, so they wait for every download.
        observer = Observer(rt, TIMELINE, poll_seconds=0.0, spool=spool, round_seconds=600.0)  # type: ignore[arg-type]
        decoder = Decoder(NETUID, limits, DenseCodec(), param_shapes(model), torch.device("cpu"))
        tracemalloc.start()
        try:
            for block in (35, 40, 41):
                chain.block = block
                await observer.poll_round()
            arrivals = await observer.closed(WINDOW)
            for m in miners:
                await publish_reveal(
                    m.store.inner,
                    netuid=NETUID,
                    window=WINDOW,
                    key=m.keys[WINDOW],
                    signer=m.keypair,
                )
            chain.block = 43
            reveals = await collect_reveals(
                chain,
                {m.uid: m.peer for m in miners},
                window=WINDOW,
                netuid=NETUID,
                observed=list(arrivals.accepted),
                reveal_close=43,
            )
            verdicts = judge_window([m.peer for m in miners], WINDOW, arrivals, reveals, decoder)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        spooled = sum(1 for _ in (tmp_path / "spool" / str(WINDOW)).iterdir())
        return peak, verdicts, spooled

    peak, verdicts, spooled = asyncio.run(scenario())
    # every upload was held (on disk) and judged: nothing was dropped to save memory
    assert spooled == PEERS
    assert [v.status for v in verdicts] == ["invalid"] * PEERS, {v.reason for v in verdicts}
    # Downloads in flight (a read chunk each), headers being checked (object + ciphertext),
    # one judgement at a time (object, ciphertext, payload) and slack for the rest.
    bound = MAX_CONCURRENT_FETCHES * min(CHUNK_BYTES, CAP + 1) + 2 * IN_FLIGHT * CAP + 4 * CAP
    assert bound < PEERS * CAP / 2  # the bound means something: far below one copy of each
    assert peak < bound, f"peak {peak / MiB:.1f} MiB, bound {bound / MiB:.1f} MiB"
