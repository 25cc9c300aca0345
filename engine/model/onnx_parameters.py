"""How many parameters an ONNX model stores, wherever its exporter put them.

A parameter is an element of a stored tensor: an initializer (dense or sparse, counted at its dense size) or the
value of a `Constant` node, in the main graph and in every If/Loop/Scan subgraph. Exporters differ only in where
they write weights (a detector whose weights sit in `Constant` nodes has the same parameters as one with
initializers). Left out are the tensors that are graph plumbing rather than weights: scalars (epsilons, scales,
zero points) and 1-D int64 tensors (shapes, axes, indices), the same rule for initializers and constants.
An initializer is counted once however many nodes read it; tensors are never merged by content, because two
distinct weights may hold equal values (freshly initialized norms).
"""

from __future__ import annotations

import math

from engine.model.onnx_graphs import walk_graphs

_PLUMBING_DTYPE = 7  # onnx.TensorProto.INT64


def count_parameters(graph) -> int:
    """Elements of every weight tensor stored in `graph` and its subgraphs (see the module rule)."""
    total = 0
    for subgraph in walk_graphs(graph):
        for tensor in subgraph.initializer:
            total += _weight_elements(tuple(tensor.dims), tensor.data_type)
        for sparse in subgraph.sparse_initializer:
            total += _weight_elements(tuple(sparse.dims), sparse.values.data_type)
        for node in subgraph.node:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                total += _constant_elements(node)
    return total


def _constant_elements(node) -> int:
    for attribute in node.attribute:
        if attribute.name == "value":
            return _weight_elements(tuple(attribute.t.dims), attribute.t.data_type)
        if attribute.name == "sparse_value":
            return _weight_elements(tuple(attribute.sparse_tensor.dims), attribute.sparse_tensor.values.data_type)
        if attribute.name == "value_floats":
            return _weight_elements((len(attribute.floats),), 1)  # onnx.TensorProto.FLOAT
    return 0  # value_ints is int64 plumbing; value_float/value_int/value_string(s) are scalars or text


def _weight_elements(dims: tuple[int, ...], data_type: int) -> int:
    elements = math.prod(dims)
    if elements <= 1 or (len(dims) == 1 and data_type == _PLUMBING_DTYPE):
        return 0
    return elements
