"""Which HBM pseudo-channel each m_axi bundle of the kernel is linked to (`link.cfg`, the
`[connectivity]` config of `v++ -l`).

Every K and every V fetch lane is its own bundle, so each gets a pseudo-channel of its own
(the report's bandwidth assumes one lane per channel): K lanes first, then V lanes, then Q,
the output, the pruning state and the parameters. A design with more bundles than
`hardware.hbm_channels` reuses channels from the first one again; the config says so. Ports
that share a bundle (the four state arrays, the four parameter arrays) share its channel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

VITIS_VERSIONS = "Vitis 2023.2 to 2025.1"  # the v++ -l [connectivity]/[clock] syntax used
# Alveo parts with HBM, by the part's first field, and a platform of each card (an example for
# `make xclbin PLATFORM=...`; installed platforms differ by shell version).
HBM_PLATFORMS = {
    "xcu280": "xilinx_u280_gen3x16_xdma_1_202211_1",
    "xcu55c": "xilinx_u55c_gen3x16_xdma_3_202210_1",
    "xcu50": "xilinx_u50_gen3x16_xdma_5_202210_1",
}


def hbm_platform(part: str) -> str | None:
    """An example platform of the HBM card with this part; None for a part without HBM (its
    bundles are left for the user to map to their platform's memories)."""
    return HBM_PLATFORMS.get(part.split("-", 1)[0].lower())


@dataclass(frozen=True)
class Connection:
    port: str  # the kernel argument
    bundle: str
    channel: int


def bundle_order(ports: Sequence[dict]) -> list[str]:
    """Bundles in channel order: K lanes, V lanes, then the rest as the top declares them."""
    bundles = list(dict.fromkeys(p["bundle"] for p in ports))
    lanes = [b for b in bundles if b.startswith("gmem_k")] + [
        b for b in bundles if b.startswith("gmem_v")
    ]
    return lanes + [b for b in bundles if b not in lanes]


def hbm_connections(ports: Sequence[dict], channels: int) -> tuple[list[Connection], bool]:
    """Every port with its bundle's pseudo-channel, and whether channels had to be shared."""
    order = bundle_order(ports)
    channel_of = {bundle: i % channels for i, bundle in enumerate(order)}
    connections = [Connection(p["name"], p["bundle"], channel_of[p["bundle"]]) for p in ports]
    connections.sort(key=lambda c: (order.index(c.bundle), c.port))
    return connections, len(order) > channels
