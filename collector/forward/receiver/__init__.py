"""A receiver of forwarded reports, for demos and tests: the national JSON endpoint over
mutual TLS and a TAXII 2.1 collection. Not a national centre: it keeps what it is sent in
JSON lines files, deduplicated by id, and lists them."""
