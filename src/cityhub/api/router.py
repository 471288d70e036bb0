"""The REST API under /api/v1: each domain contributes its router."""

from fastapi import APIRouter

from cityhub.workorders.views import router as orders_router

api_router = APIRouter(prefix="/api/v1")
api_router.include_router(orders_router)
