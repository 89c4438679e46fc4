"""Content-addressed storage: chunks in packs, metadata objects as loose files."""
