"""The REST API under /api/v1: each domain contributes its router."""

from fastapi import APIRouter, Depends

from cityhub.analytics.exemption_views import router as exemptions_router
from cityhub.analytics.graph_views import router as graph_router
from cityhub.analytics.topic_views import router as topics_router
from cityhub.analytics.views import router as kpi_router
from cityhub.api.deps import checked_request
from cityhub.auditlog_views import router as log_router
from cityhub.auth.views import router as auth_router
from cityhub.dispatch.views import router as dispatch_router
from cityhub.intake.invalid_call_views import router as invalid_calls_router
from cityhub.intake.views import router as import_router
from cityhub.knowledge.views import orders_router as kb_orders_router
from cityhub.knowledge.views import router as kb_router
from cityhub.monitoring.views import alarms_router, readings_router, rules_router
from cityhub.monitoring.views import router as sensors_router
from cityhub.notify.notice_views import router as notices_router
from cityhub.notify.views import router as notify_router
from cityhub.onemap.views import router as map_router
from cityhub.org.place_views import router as places_router
from cityhub.org.views import units_router, users_router
from cityhub.sharing.views import router as sharing_router
from cityhub.workorders.admin_views import calendar_router, categories_router, sla_router
from cityhub.workorders.tracking_views import router as tracking_router
from cityhub.workorders.tracking_views import sms_router
from cityhub.workorders.views import router as orders_router

# Every route refuses a JSON body holding text no database stores (NUL, lone surrogates) or a field it does not take,
# and a query parameter it does not take, naming them, and answers an id in its path that no table can hold as a
# thing not found — once the route's authentication and permission checks have let the caller through.
api_router = APIRouter(prefix="/api/v1", dependencies=[Depends(checked_request)])
api_router.include_router(auth_router)
api_router.include_router(import_router)
api_router.include_router(orders_router)
api_router.include_router(tracking_router)
api_router.include_router(sms_router)
api_router.include_router(sharing_router)
api_router.include_router(kb_router)
api_router.include_router(kb_orders_router)
api_router.include_router(dispatch_router)
api_router.include_router(exemptions_router)  # /kpi/exemptions before /kpi's own routes
api_router.include_router(kpi_router)
api_router.include_router(invalid_calls_router)
api_router.include_router(graph_router)
api_router.include_router(topics_router)
api_router.include_router(map_router)
api_router.include_router(units_router)
api_router.include_router(places_router)
api_router.include_router(users_router)
api_router.include_router(categories_router)
api_router.include_router(sla_router)
api_router.include_router(calendar_router)
api_router.include_router(readings_router)
api_router.include_router(sensors_router)
api_router.include_router(rules_router)
api_router.include_router(alarms_router)
api_router.include_router(log_router)
api_router.include_router(notify_router)
api_router.include_router(notices_router)
