"""Request and response bodies of the identity endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from cityhub.auth.settings import MAX_TOKEN_DAYS
from cityhub.org.models import Role


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class Me(BaseModel):
    id: int
    username: str
    full_name: str
    role: Role
    unit_id: int | None
    unit_tier: str | None
    auth_method: str
    permissions: list[str]
    phone_verified: bool = Field(
        False,
        description="a citizen verified the phone on their account (/account): the orders registered with that number "
        "are theirs to read and rate too (GET /orders lists them); false for staff",
    )


class LoginResponse(BaseModel):
    user: Me
    csrf_token: str = Field(description="send it back in X-CSRF-Token on POST/PUT/PATCH/DELETE")
    expires_at: datetime


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=80)
    days: int | None = Field(
        None, ge=1, le=MAX_TOKEN_DAYS, description="lifetime in days (default CITYHUB_API_TOKEN_DAYS, at most 365)"
    )
    password: str | None = Field(
        None,
        min_length=1,
        max_length=1024,
        description="the account's password: required when the request is authenticated with an API token (a token "
        "cannot make tokens on its own); not needed from a signed-in browser session",
    )


class TokenRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked: bool


class TokenCreated(TokenRead):
    token: str = Field(description="the secret, shown only this once")


class PasswordChange(BaseModel):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)
    revoke_tokens: bool = Field(False, description="also revoke every personal API token of the account")


class PasswordChanged(BaseModel):
    sessions_ended: int = Field(description="the account's other browser sessions, signed out")
    tokens_revoked: int
