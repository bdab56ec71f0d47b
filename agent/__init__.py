"""Canh Gác agent: host sources, durable spool and the shipper to the collector."""
