"""A chunk's sentences are whole: wrapped lines rejoined, abbreviations kept, list items and headings apart."""

from __future__ import annotations

from ragcorp_service.generation.sentences import blocks, sentences


def test_a_hard_wrapped_sentence_comes_back_whole() -> None:
    text = (
        "To rotate the API keys, open the secret that holds\nAPI_KEYS and add the new key. Then roll\nthe Deployment."
    )
    assert sentences(text) == [
        "To rotate the API keys, open the secret that holds API_KEYS and add the new key.",
        "Then roll the Deployment.",
    ]


def test_abbreviations_decimals_and_initials_do_not_end_a_sentence() -> None:
    text = (
        "Never paste keys into chat, e.g. Slack or email. Dr. Smith's team found 3.5 leaks a month in the U.S. office."
    )
    assert sentences(text) == [
        "Never paste keys into chat, e.g. Slack or email.",
        "Dr. Smith's team found 3.5 leaks a month in the U.S. office.",
    ]


def test_list_items_are_their_own_blocks_and_lose_their_bullets() -> None:
    text = (
        "Rules for keys:\n- Keys are compared in constant\n  time by the server\n"
        "- Requests without a key get 401\n1. Numbered items count too"
    )
    assert blocks(text) == [
        "Rules for keys:",
        "Keys are compared in constant time by the server",
        "Requests without a key get 401",
        "Numbered items count too",
    ]


def test_headings_tables_and_code_are_not_quoted() -> None:
    text = (
        "# Rotating the keys today\n\n| key | scope of the key |\n\n```sh\nexport API_KEYS=secret value here\n```\n"
        "Keys rotate every ninety days."
    )
    assert sentences(text) == ["Keys rotate every ninety days."]


def test_fragments_too_short_to_answer_anything_are_skipped() -> None:
    assert sentences("See below.\n\nThe key rotation takes two rolls.") == ["The key rotation takes two rolls."]
