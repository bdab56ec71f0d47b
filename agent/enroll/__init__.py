"""The agent's identity: enrollment, its key and certificate on disk, renewal, TLS diagnosis.

`canhgac-agent enroll` generates a key locally (it never leaves the host), sends a CSR with a
single-use token to the collector's enrollment port and stores the certificate it gets. From
then on every connection is mutual TLS with that certificate, and the agent renews it over
mutual TLS when a third of its validity is left.
"""
