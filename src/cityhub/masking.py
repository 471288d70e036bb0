"""Masking of citizens' personal data in read models (roles that need not see it get masked values)."""

from __future__ import annotations


def mask_phone(phone: str | None) -> str | None:
    """138****5678 for mobile numbers; keep only the last 4 digits of anything else."""
    if not phone:
        return phone
    digits = phone.strip()
    if len(digits) >= 11:
        return f"{digits[:3]}****{digits[-4:]}"
    if len(digits) > 4:
        return "*" * (len(digits) - 4) + digits[-4:]
    return "*" * len(digits)


def mask_name(name: str | None) -> str | None:
    """张** for Chinese names (surname kept), J*** for others."""
    if not name:
        return name
    name = name.strip()
    if len(name) <= 1:
        return "*"
    return name[0] + "*" * (len(name) - 1)
