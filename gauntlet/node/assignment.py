"""The pages a miner is assigned in a window, as every node computes them: the protocol's
draw (:func:`protocol.assignment.assign_pages`) over this node's dataset, as many as the
window's training phase takes (a superposition phase reads ``bag`` times more pages)."""

from __future__ import annotations

from typing import Protocol

from gauntlet.config.schema import GauntletConfig
from gauntlet.data import PageDataset
from gauntlet.train.objective import objective_at
from protocol.assignment import assign_pages


class AssignmentNode(Protocol):
    """What the draw reads of a node (a Runtime fits)."""

    @property
    def config(self) -> GauntletConfig: ...

    @property
    def dataset(self) -> PageDataset: ...


def assigned_pages(node: AssignmentNode, uid: int, hotkey: str, window: int) -> list[int]:
    """The page stream of miner ``uid``/``hotkey`` in ``window``; distinct, in draw order."""
    return assign_pages(
        netuid=node.config.chain.netuid,
        uid=uid,
        hotkey=hotkey,
        window=window,
        dataset_id=node.dataset.dataset_id,
        num_pages=node.dataset.num_train_pages,
        pages_per_window=objective_at(node.config.train, window).pages(
            node.config.data.pages_per_window
        ),
    )
