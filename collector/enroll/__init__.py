"""Enrollment and agent identity: tokens, certificate signing, mutual TLS, revocation.

An agent enrolls once on the enrollment port (server-authenticated TLS, since it has no
certificate yet) with a single-use token and a CSR for a key it generated; the collector's CA
signs a client certificate naming the agent. From then on every connection to the ingest port
is mutual TLS, the agent's identity is the one in its certificate, and it renews that
certificate over the same mutual TLS before it expires. Revocation ends open streams within
`ingest.revocation_poll_ms` and refuses the agent from then on.
"""
