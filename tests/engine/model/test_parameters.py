"""Parameters counted wherever the exporter stored the weights: initializers, Constant nodes, subgraphs."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from engine.model.opening import load_model


def test_weights_in_constants_and_subgraphs_count_once_and_plumbing_does_not(tmp_path):
    # setup: W (4×3) is an initializer read twice; b and a branch bias sit in Constant nodes
    weight = numpy_helper.from_array(np.ones((4, 3), np.float32), "W")
    constant = helper.make_node("Constant", [], ["b"], value=numpy_helper.from_array(np.ones(3, np.float32)))
    floats = helper.make_node("Constant", [], ["c"], value_floats=[1.0, 2.0, 3.0])
    shape = helper.make_node("Constant", [], ["shape"], value_ints=[1, 3])  # plumbing: not a weight
    epsilon = helper.make_node("Constant", [], ["eps"], value_float=1e-5)  # scalar: not a weight
    branch_bias = helper.make_node("Constant", [], ["bb"], value=numpy_helper.from_array(np.ones((1, 3), np.float32)))
    then_graph = helper.make_graph([branch_bias, helper.make_node("Add", ["y1", "bb"], ["t"])], "then", [],
                                   [helper.make_tensor_value_info("t", TensorProto.FLOAT, [1, 3])])
    else_graph = helper.make_graph([helper.make_node("Identity", ["y2"], ["e"])], "else", [],
                                   [helper.make_tensor_value_info("e", TensorProto.FLOAT, [1, 3])])
    graph = helper.make_graph(
        [constant, floats, shape, epsilon,
         helper.make_node("MatMul", ["x", "W"], ["m1"]), helper.make_node("MatMul", ["x", "W"], ["m2"]),
         helper.make_node("Add", ["m1", "b"], ["y1"]), helper.make_node("Add", ["m2", "c"], ["y2"]),
         helper.make_node("If", ["flag"], ["y"], then_branch=then_graph, else_branch=else_graph)],
        "weights", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4]),
                    helper.make_tensor_value_info("flag", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], [weight])
    path = tmp_path / "weights.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)

    # execute
    handle = load_model(path)

    # assert
    assert handle.parameter_count == 4 * 3 + 3 + 3 + 3
