"""Unified identity: accounts, passwords, cookie sessions, API tokens, OIDC sign-on, permissions and data scope."""
