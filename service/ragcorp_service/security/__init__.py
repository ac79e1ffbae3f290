"""Who may call what, and how often: API keys with scopes, and per-key rate limits."""
