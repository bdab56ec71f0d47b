"""Information systems: their registry, level dossiers and assets."""
