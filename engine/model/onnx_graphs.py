"""Walking an ONNX graph together with the subgraphs nested in its If, Loop and Scan nodes."""

from __future__ import annotations

from collections.abc import Iterator


def walk_graphs(graph) -> Iterator:
    """The graph, then every subgraph nested in its nodes' attributes, depth first."""
    yield graph
    for node in graph.node:
        yield from nested_graphs(node)


def nested_graphs(node) -> Iterator:
    """Every subgraph held by one node's attributes (If branches, Loop and Scan bodies), and theirs."""
    for attribute in node.attribute:
        if attribute.HasField("g"):
            yield from walk_graphs(attribute.g)
        for subgraph in attribute.graphs:
            yield from walk_graphs(subgraph)
