"""The agent's own status as a periodic event (RSS, CPU, events per source, drops, spool)."""
