"""Export the trained linear model as a sparse ONNX graph and check parity.

skl2onnx's text pipeline densifies to [batch × vocabulary] and gets slower than
sklearn itself at a realistic vocabulary (PERFORMANCE-NOTES), so the graph is
built by hand with ``onnx.helper``::

    ids  int64 [N, L]   token ids (padding: any id with tf = 0)
    tf   float [N, L]   term frequency (1 + log count; 0 for padding)

    x      = tf * Gather(idf, ids)                 # tf-idf weights
    x      = x / max(sqrt(sum(x², axis 1)), eps)   # L2 normalisation, as sklearn
    contrib = x[:, :, None] * Gather(W, ids)       # second output, for explanations
    logits = sum(contrib, axis 1) + b
    probabilities = Sigmoid(logits)                # calibration folded into W, b

The export refuses to write a bundle when ONNX and the trained model disagree
beyond :data:`PARITY_TOLERANCE` on held-out data.
"""

from __future__ import annotations

import numpy as np

__all__ = ["PARITY_TOLERANCE", "build_graph", "onnx_probabilities"]

#: Largest |Δp| allowed between onnxruntime and the trained model.
PARITY_TOLERANCE = 1e-4
OPSET = 17


def build_graph(idf: np.ndarray, weights: np.ndarray, bias: np.ndarray, metadata: dict[str, str]) -> bytes:
    """Build the sparse linear ONNX model.

    Parameters
    ----------
    idf : ndarray, shape (V,)
        Inverse document frequency per vocabulary id.
    weights : ndarray, shape (V, K)
        Per-feature weights for each of the K labels (calibration folded in).
    bias : ndarray, shape (K,)
        Per-label bias.
    metadata : dict[str, str]
        Written into the ONNX file's metadata (labels, model version, ...).

    Returns
    -------
    bytes
        The serialised ONNX model.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    v, k = weights.shape
    if idf.shape != (v,) or bias.shape != (k,):
        raise ValueError(f"shape mismatch: idf {idf.shape}, weights {weights.shape}, bias {bias.shape}")
    inits = [
        numpy_helper.from_array(idf.astype(np.float32), "idf"),
        numpy_helper.from_array(weights.astype(np.float32), "W"),
        numpy_helper.from_array(bias.astype(np.float32), "b"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2"),
        numpy_helper.from_array(np.array(1e-12, dtype=np.float32), "eps"),
    ]
    nodes = [
        helper.make_node("Gather", ["idf", "ids"], ["idf_g"]),
        helper.make_node("Mul", ["tf", "idf_g"], ["x"]),
        helper.make_node("Mul", ["x", "x"], ["x2"]),
        helper.make_node("ReduceSum", ["x2", "axis1"], ["ss"], keepdims=1),
        helper.make_node("Sqrt", ["ss"], ["norm0"]),
        helper.make_node("Max", ["norm0", "eps"], ["norm"]),
        helper.make_node("Div", ["x", "norm"], ["xn"]),
        helper.make_node("Unsqueeze", ["xn", "axis2"], ["xn3"]),
        helper.make_node("Gather", ["W", "ids"], ["w_g"]),
        helper.make_node("Mul", ["w_g", "xn3"], ["contrib"]),
        helper.make_node("ReduceSum", ["contrib", "axis1"], ["z0"], keepdims=0),
        helper.make_node("Add", ["z0", "b"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["probabilities"]),
    ]
    graph = helper.make_graph(
        nodes,
        "kefuguard_sparse_linear",
        [
            helper.make_tensor_value_info("ids", TensorProto.INT64, ["N", "L"]),
            helper.make_tensor_value_info("tf", TensorProto.FLOAT, ["N", "L"]),
        ],
        [
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", k]),
            # Per-token contribution to each logit: explanations read it for flagged
            # messages only; the scoring fast path asks for probabilities alone.
            helper.make_tensor_value_info("contrib", TensorProto.FLOAT, ["N", "L", k]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="kefuguard")
    model.ir_version = 8
    helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def onnx_probabilities(model_bytes: bytes, rows: list[dict[int, float]]) -> np.ndarray:
    """Run the ONNX graph on sparse rows ``{id: tf}`` with onnxruntime."""
    import onnxruntime as ort

    sess = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    width = max(1, max((len(r) for r in rows), default=1))
    ids = np.zeros((len(rows), width), dtype=np.int64)
    tf = np.zeros((len(rows), width), dtype=np.float32)
    for i, r in enumerate(rows):
        if r:
            ids[i, : len(r)] = list(r.keys())
            tf[i, : len(r)] = list(r.values())
    return sess.run(["probabilities"], {"ids": ids, "tf": tf})[0]
