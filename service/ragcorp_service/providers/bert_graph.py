"""The ONNX graph of a BERT encoder, written from its safetensors weights with onnx and numpy.

Why by hand: the only other road from these weights to ONNX is torch's exporter, and
the public index's torch for Linux is a multi-GB CUDA build. BERT is a short, fixed
recipe (embeddings, then per layer self-attention and a feed-forward block, each
closed by a residual LayerNorm), so the graph is written directly in onnxruntime's
fused BERT operators — the graph its optimizer made of torch's export: one
EmbedLayerNormalization, then per layer Attention (query, key and value as one
MatMul), MatMul + SkipLayerNormalization, MatMul + BiasGelu, MatMul +
SkipLayerNormalization. Tests hold its vectors to sentence-transformers' own.

Masks: EmbedLayerNormalization turns the attention mask into each row's token count,
which Attention reads as "the first n tokens are real" — right padding, which is
what the tokenizer produces.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: ONNX opset of the standard operators (Cast, MatMul) beside onnxruntime's `com.microsoft` ones.
OPSET = 17
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT = "last_hidden_state"
_CONTRIB = "com.microsoft"


@dataclass(frozen=True)
class BertConfig:
    """The fields of a Hugging Face config.json that the graph depends on."""

    hidden_size: int
    num_attention_heads: int
    num_hidden_layers: int
    layer_norm_eps: float

    @classmethod
    def read(cls, path: Path) -> BertConfig:
        raw = json.loads(path.read_text())
        if raw.get("model_type") != "bert" or raw.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"{path}: not a BERT encoder with absolute position embeddings")
        if raw.get("hidden_act") != "gelu":
            raise ValueError(f"{path}: hidden_act {raw.get('hidden_act')!r}; the graph has the exact (erf) GELU only")
        return cls(raw["hidden_size"], raw["num_attention_heads"], raw["num_hidden_layers"], raw["layer_norm_eps"])


def down_projection(layer: int) -> str:
    """The name of a layer's feed-forward output MatMul (the quantisation recipe leaves these fp32)."""
    return f"encoder.layer.{layer}.output.dense"


class _Graph:
    """Nodes and initializers in order; a node's output is named after the node."""

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        from onnx import helper, numpy_helper

        self._helper, self._numpy_helper = helper, numpy_helper
        self._weights = weights
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []

    def checkpoint(self, name: str) -> np.ndarray:
        return self._weights[name]

    def tensor(self, name: str, value: np.ndarray | None = None) -> str:
        """A checkpoint tensor by its name, or a derived one given its value."""
        array = self.checkpoint(name) if value is None else value
        self.initializers.append(self._numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name))
        return name

    def linear_weight(self, prefix: str) -> str:
        """A Linear layer's weight: stored (out, in), MatMul multiplies by (in, out)."""
        return self.tensor(f"{prefix}.weight", self.checkpoint(f"{prefix}.weight").T)

    def op(self, op_type: str, name: str, inputs: list[str], outputs: int = 1, **attributes: Any) -> list[str]:
        names = [name] if outputs == 1 else [f"{name}:{i}" for i in range(outputs)]
        domain = "" if op_type in ("Cast", "MatMul") else _CONTRIB
        self.nodes.append(self._helper.make_node(op_type, inputs, names, name, domain=domain, **attributes))
        return names


def _embeddings(graph: _Graph, epsilon: float) -> tuple[str, str]:
    """Word + position + token-type embeddings and LayerNorm; also each row's token count (the mask)."""
    ids, mask, types = (graph.op("Cast", f"{name}.int32", [name], to=6)[0] for name in INPUTS)  # 6: INT32
    hidden, token_counts = graph.op(
        "EmbedLayerNormalization",
        "embeddings",
        [
            ids,
            types,
            graph.tensor("embeddings.word_embeddings.weight"),
            graph.tensor("embeddings.position_embeddings.weight"),
            graph.tensor("embeddings.token_type_embeddings.weight"),
            graph.tensor("embeddings.LayerNorm.weight"),
            graph.tensor("embeddings.LayerNorm.bias"),
            mask,
        ],
        outputs=2,
        epsilon=epsilon,
    )
    return hidden, token_counts


def _residual(graph: _Graph, x: str, skip: str, dense: str, norm: str, epsilon: float) -> str:
    """LayerNorm(x @ W + b + skip): a dense projection closed by its residual LayerNorm."""
    projected = graph.op("MatMul", dense, [x, graph.linear_weight(dense)])[0]
    inputs = [
        projected,
        skip,
        graph.tensor(f"{norm}.weight"),
        graph.tensor(f"{norm}.bias"),
        graph.tensor(f"{dense}.bias"),
    ]
    return graph.op("SkipLayerNormalization", norm, inputs, epsilon=epsilon)[0]


def _layer(graph: _Graph, hidden: str, token_counts: str, layer: int, config: BertConfig) -> str:
    prefix, epsilon = f"encoder.layer.{layer}", config.layer_norm_eps
    parts = [f"{prefix}.attention.self.{part}" for part in ("query", "key", "value")]
    qkv_weight = np.concatenate([graph.checkpoint(f"{part}.weight").T for part in parts], axis=1)
    qkv_bias = np.concatenate([graph.checkpoint(f"{part}.bias") for part in parts])
    attention_inputs = [
        hidden,
        graph.tensor(f"{prefix}.attention.self.qkv.weight", qkv_weight),
        graph.tensor(f"{prefix}.attention.self.qkv.bias", qkv_bias),
        token_counts,
    ]
    attended = graph.op(
        "Attention", f"{prefix}.attention.self", attention_inputs, num_heads=config.num_attention_heads
    )[0]
    hidden = _residual(
        graph, attended, hidden, f"{prefix}.attention.output.dense", f"{prefix}.attention.output.LayerNorm", epsilon
    )
    inner_dense = f"{prefix}.intermediate.dense"
    inner = graph.op("MatMul", inner_dense, [hidden, graph.linear_weight(inner_dense)])[0]
    activated = graph.op("BiasGelu", f"{prefix}.intermediate.gelu", [inner, graph.tensor(f"{inner_dense}.bias")])[0]
    return _residual(graph, activated, hidden, down_projection(layer), f"{prefix}.output.LayerNorm", epsilon)


def build(weights: dict[str, np.ndarray], config: BertConfig) -> Any:
    """The encoder as an onnx.ModelProto: token ids, mask and types in, the last hidden state out."""
    from onnx import TensorProto, helper

    graph = _Graph(weights)
    hidden, token_counts = _embeddings(graph, config.layer_norm_eps)
    for layer in range(config.num_hidden_layers):
        hidden = _layer(graph, hidden, token_counts, layer, config)
    graph.nodes.append(helper.make_node("Identity", [hidden], [OUTPUT], "output"))
    inputs = [helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "tokens"]) for name in INPUTS]
    output = helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", "tokens", config.hidden_size])
    return helper.make_model(
        helper.make_graph(graph.nodes, "bert", inputs, [output], graph.initializers),
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(_CONTRIB, 1)],
        producer_name="ragcorp",
    )


def load_weights(path: Path) -> dict[str, np.ndarray]:
    """The checkpoint's tensors by name, read with safetensors' numpy loader (no torch)."""
    from safetensors.numpy import load_file

    return load_file(str(path))
