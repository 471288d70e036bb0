"""Annotated dependencies of the HTTP layer: a database session per request, the acting user, pagination."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Query
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from cityhub.db import session_factory
from cityhub.errors import Conflict
from cityhub.workorders.service import Actor


def get_db() -> Iterator[Session]:
    """One session and transaction per request: committed on success, rolled back on any error."""
    session = session_factory()()
    try:
        yield session
        session.commit()
    except StaleDataError:
        session.rollback()
        raise Conflict("the order was changed by someone else at the same time; reload and try again") from None
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


DbSession = Annotated[Session, Depends(get_db)]


def get_actor() -> Actor:
    """The acting person. Replaced by the identity layer (sessions, tokens, data scope)."""
    return Actor(name="api")


CurrentActor = Annotated[Actor, Depends(get_actor)]


class Page:
    def __init__(
        self,
        limit: Annotated[int, Query(ge=1, le=500, description="Page size.")] = 50,
        offset: Annotated[int, Query(ge=0, le=10_000_000, description="Rows to skip.")] = 0,
    ) -> None:
        self.limit = limit
        self.offset = offset


Paging = Annotated[Page, Depends()]
