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


#: The example handbook's questions (examples/docs) and a sentence each answer must hold.
HANDBOOK_ANSWERS = {
    "How do I rotate the API keys?": "To rotate the API keys, open the secret that holds API_KEYS, add the new key "
    "next to the old one, and roll the Deployment so that every Pod reads both.",
    "How do I restore after a bad migration?": "To restore after a bad migration, stop the writers first, then load "
    "the most recent dump with pg_restore into an empty database, and point DATABASE_URL at it.",
    "When should I escalate to the database team?": "Escalate to the database team when replication lag passes "
    "five minutes.",
    "Who wrote the runbook for slow search?": "Ren\u00e9e Dub\u00e9 wrote the runbook for this case; it is linked "
    "from the alert.",
    "Until when do unused leave days carry over?": "Annual leave is twenty-five days a year, and unused days carry "
    "over until the end of March of the following year.",
}
