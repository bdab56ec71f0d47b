"""The ten national incident categories a rule's alerts are filed under (`canhgac.category`).

They follow the incident categories of the national reporting form (DOMAIN.md §3.1, Mẫu 05),
which the new regime has not replaced yet; issue 7 moves them into the legal regime's data.
"""

from __future__ import annotations

from typing import Final

INCIDENT_CATEGORIES: Final[frozenset[str]] = frozenset(
    {
        "denial_of_service",  # DoS / DDoS
        "spoofing",  # phishing, spoofing
        "malware",
        "unauthorized_access",  # intrusion, account or system takeover
        "defacement",
        "ransomware",  # encryption for ransom
        "destruction",  # destroying data or systems
        "data_theft",  # theft of data, espionage
        "multi_vector",  # combined attack
        "other",
    }
)
