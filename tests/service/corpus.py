"""A small, hand-written corpus whose right answers are known."""

from __future__ import annotations

from typing import Any

DOCUMENTS: list[dict[str, Any]] = [
    {
        "title": "Photosynthesis",
        "text": "Photosynthesis converts light energy into chemical energy in plants. "
        "It takes place in the chloroplasts, where chlorophyll absorbs light.\n\n"
        "The Calvin cycle fixes carbon dioxide into sugars.",
        "metadata": {"topic": "biology", "year": 2020},
    },
    {
        "title": "Volcanoes",
        "text": "A volcano is a rupture in the crust of a planet through which lava, ash and gases escape. "
        "Basaltic lava flows are runny; rhyolitic magma is viscous and erupts explosively.",
        "metadata": {"topic": "geology", "year": 2021},
    },
    {
        "title": "Neural networks",
        "text": "A neural network learns weights by gradient descent on a loss function. "
        "Backpropagation computes the gradient of the loss with respect to every weight.",
        "metadata": {"topic": "computing", "year": 2022},
    },
]


async def ingest_all(client: Any, collection: str = "default") -> dict[str, str]:
    """Ingest the corpus; returns title -> document id."""
    response = await client.post(
        "/v1/documents/batch", json={"documents": [{**d, "collection": collection} for d in DOCUMENTS]}
    )
    assert response.status_code == 201, response.text
    return {d["title"]: d["id"] for d in response.json()["documents"]}
