"""The API's browsable docs work without the internet: every asset comes from the app itself."""

from __future__ import annotations

import re

import httpx
import pytest


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_docs_pages_load_every_asset_from_the_app(client: httpx.AsyncClient, page: str) -> None:
    response = await client.get(page)
    assert response.status_code == 200 and "text/html" in response.headers["content-type"]
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", response.text)
    scripts_and_styles = [a for a in assets if a.endswith((".js", ".css"))]
    assert scripts_and_styles, response.text
    assert not [a for a in assets if a.startswith(("http://", "https://", "//"))], assets
    for asset in scripts_and_styles:
        loaded = await client.get(asset)
        assert loaded.status_code == 200 and len(loaded.content) > 10_000, asset
