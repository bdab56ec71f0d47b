"""The authentication-log source (sshd, sudo, su and account management in auth.log)."""

from .source import AuthLogConfig, AuthLogSource

__all__ = ["AuthLogConfig", "AuthLogSource"]
