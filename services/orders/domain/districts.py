"""How far apart Beijing's 16 districts (libs.common.districts) are, for matching's score.

The neighbours are our table, read off the map: two districts are neighbours when they share a
border. The distance between two districts is the fewest borders crossed to get from one to the
other (0 for the same district).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from libs.common.districts import BEIJING_DISTRICTS

_NAMES = BEIJING_DISTRICTS
_BORDERS = (
    "东城 西城 朝阳 丰台",
    "西城 海淀 朝阳 丰台",
    "朝阳 海淀 昌平 顺义 通州 大兴 丰台",
    "丰台 海淀 石景山 门头沟 房山 大兴",
    "石景山 海淀 门头沟",
    "海淀 门头沟 昌平",
    "门头沟 房山 昌平",
    "房山 大兴",
    "通州 顺义 大兴",
    "顺义 昌平 怀柔 密云 平谷",
    "昌平 怀柔 延庆",
    "怀柔 密云 延庆",
    "平谷 密云",
)


def _neighbours() -> dict[str, set[str]]:
    code = {name: c for c, name in _NAMES.items()}
    graph: dict[str, set[str]] = {c: set() for c in _NAMES}
    for line in _BORDERS:
        first, *others = (code[name] for name in line.split())
        for other in others:
            graph[first].add(other)
            graph[other].add(first)
    return graph


def _hops_from(start: str, graph: Mapping[str, set[str]]) -> dict[str, int]:
    hops, queue = {start: 0}, deque([start])
    while queue:
        here = queue.popleft()
        for there in graph[here] - hops.keys():
            hops[there] = hops[here] + 1
            queue.append(there)
    return hops


_GRAPH = _neighbours()
NEIGHBOURS: Mapping[str, frozenset[str]] = {c: frozenset(n) for c, n in _GRAPH.items()}
_DISTANCE = {(a, b): hops for a in _NAMES for b, hops in _hops_from(a, _GRAPH).items()}


def district_distance(a: str, b: str) -> int:
    """Borders crossed from district ``a`` to district ``b``; an unknown code is as far as can be."""
    return _DISTANCE.get((a, b), len(_NAMES))
