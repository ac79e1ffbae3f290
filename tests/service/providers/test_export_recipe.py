"""The export recipe is part of the model's identity: change it and the name changes with it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ragcorp_service.local_models import (
    DEFAULT,
    ONNX_FP32,
    RETIRED_MODELS,
    ExportRecipe,
    Quantisation,
    onnx_model,
)


def test_each_recipe_parameter_changes_the_model_name_and_file() -> None:
    assert DEFAULT.recipe is not None and DEFAULT.recipe.quantisation is not None
    variants = [
        replace(DEFAULT.recipe, graph="bert-fused/2"),
        replace(DEFAULT.recipe, quantisation=Quantisation(per_channel=False)),
        replace(DEFAULT.recipe, quantisation=Quantisation(fp32_down_projections=False)),
        replace(DEFAULT.recipe, quantisation=Quantisation(weight_type="QUInt8")),
        replace(DEFAULT.recipe, quantisation=Quantisation(int8_embeddings=True)),
    ]
    names = {onnx_model("int8", recipe).name for recipe in variants}
    files = {onnx_model("int8", recipe).onnx_file for recipe in variants}
    assert len(names) == len(files) == len(variants)
    assert DEFAULT.name not in names and DEFAULT.onnx_file not in files


def test_the_same_recipe_always_gives_the_same_name() -> None:
    assert onnx_model("int8", ExportRecipe(quantisation=Quantisation())) == DEFAULT
    assert onnx_model("fp32", ExportRecipe()) == ONNX_FP32


def test_names_of_earlier_recipes_are_not_reused() -> None:
    assert DEFAULT.name.startswith("all-MiniLM-L6-v2:onnx-int8-")
    assert {DEFAULT.name, ONNX_FP32.name}.isdisjoint(RETIRED_MODELS)


def test_the_configuration_page_names_the_variants_the_service_knows() -> None:
    """A recipe change renames the models: the page users configure from must follow."""
    page = (Path(__file__).resolve().parents[3] / "docs" / "configuration.md").read_text()
    assert f"`{DEFAULT.name}` (default)" in page and f"`{ONNX_FP32.name}`" in page
