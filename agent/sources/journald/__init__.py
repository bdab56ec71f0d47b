"""Authentication events from the systemd journal (for hosts without an auth.log).

Only the configuration is imported here: agent.config needs it even when the source is off
(the default), and the source's modules then stay out of the agent's memory.
"""

from .config import JournaldConfig

__all__ = ["JournaldConfig"]
