"""Generated wire contract v1 (scripts/gen_protos.py); do not edit."""
