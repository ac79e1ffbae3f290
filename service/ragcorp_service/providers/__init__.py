"""Model providers: `local` (offline, bundled) and `gemini` (google-genai)."""
