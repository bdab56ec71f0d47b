"""Layer 4: forwarding alerts and incidents upstream through a transactional outbox."""
