"""Authentication and roles for every HTTP route (ARCHITECTURE.md decision 8)."""
