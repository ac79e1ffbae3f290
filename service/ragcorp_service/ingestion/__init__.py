"""From an uploaded file or JSON body to stored, embedded chunks."""
