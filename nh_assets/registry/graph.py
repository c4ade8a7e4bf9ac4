"""The registry's rows as a graph: cycles named so an operator can break them, and a stable order.

Dagster refuses any cycle between asset keys, whatever the day offsets, and says so only with
a generic error at load time. Here each group of rows that reach each other (a strongly
connected component) is reported once, as its shortest cycle through its first row in file
order: the cycle the operator can read and break with one edit. The registry has tens of rows,
so plain breadth-first searches are enough; no general graph library is needed.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence


def _reachable(edges: Mapping[str, Sequence[str]], start: str) -> set[str]:
    """Every node reachable from ``start`` by at least one edge (``start`` only via a cycle)."""
    seen: set[str] = set()
    frontier = list(edges[start])
    while frontier:
        node = frontier.pop()
        if node not in seen:
            seen.add(node)
            frontier.extend(edges[node])
    return seen


def _shortest_cycle(edges: Mapping[str, Sequence[str]], start: str, members: set[str]) -> list[str]:
    """Breadth first from ``start`` back to itself inside ``members``; children in given order."""
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier and start not in previous:
        next_frontier = []
        for node in frontier:
            for child in edges[node]:
                if child not in members:
                    continue
                if child == start:
                    previous[start] = node
                    break
                if child not in previous:
                    previous[child] = node
                    next_frontier.append(child)
            if start in previous:
                break
        frontier = next_frontier
    path = [start]
    node = previous[start]
    while node != start:
        path.append(node)
        node = previous[node]
    path.append(start)
    path.reverse()
    return path


def find_cycles(edges: Mapping[str, Sequence[str]], order: Sequence[str]) -> list[list[str]]:
    """One cycle per strongly connected component, as ``[a, b, …, a]``, in ``order`` of its first node.

    ``edges`` maps every node to the nodes it depends on (self-edges left out); ``order`` is
    the file order, which decides where each reported cycle starts.
    """
    reach = {node: _reachable(edges, node) for node in order}
    reported: set[str] = set()
    cycles = []
    for start in order:
        if start in reported or start not in reach[start]:
            continue
        component = {node for node in reach[start] if start in reach[node]}
        reported |= component
        cycles.append(_shortest_cycle(edges, start, component))
    return cycles


def topological_order(edges: Mapping[str, Sequence[str]], order: Sequence[str]) -> list[str]:
    """Every node after the nodes it depends on; ties keep ``order`` (file order), so listings
    (``nh plan``, ``nh status``) read like the registry. Raises ``ValueError`` on a cycle."""
    position = {node: i for i, node in enumerate(order)}
    pending = {node: {d for d in edges[node] if d != node and d in position} for node in order}
    dependents: dict[str, list[str]] = {node: [] for node in order}
    for node, deps in pending.items():
        for dep in deps:
            dependents[dep].append(node)
    ready = [position[node] for node, deps in pending.items() if not deps]
    heapq.heapify(ready)
    result: list[str] = []
    while ready:
        node = order[heapq.heappop(ready)]
        result.append(node)
        for child in dependents[node]:
            pending[child].discard(node)
            if not pending[child]:
                heapq.heappush(ready, position[child])
    if len(result) != len(order):
        raise ValueError("the registry has a dependency cycle")
    return result
