"""Open311 GeoReport v2 under ``/open311/v2/``, in JSON and XML, plus the ``servicerequestupdates`` extension.

Errors on these routes use the Open311 format, a list of ``{code, description}`` (XML ``errors/error``), with
the HTTP status as ``code`` — a deliberate exception to the one error body of the rest of the HTTP layer,
because Open311 clients parse this shape. POST takes ``application/x-www-form-urlencoded`` (or JSON) and needs
an ``api_key`` with the scope ``open311:write``; GETs are public, and a key given with them is checked, rate
limited and counted in the client's statistics. Requests read without a key are anonymised
(:mod:`cityhub.sharing.georeport`); a client's own key shows it the requests it posted as it sent them.
"""

from __future__ import annotations

import json
import logging
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import parse_qsl, unquote_plus

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cityhub.api.bodylimit import read_capped
from cityhub.api.credentials import API_KEY, takes
from cityhub.errors import CityhubError, ValidationFailed, schema_message
from cityhub.sharing import georeport
from cityhub.sharing.http import MeteredDb, MeteredRoute, authorize
from cityhub.sharing.service import Caller
from cityhub.workorders import files
from cityhub.workorders.files import Upload

log = logging.getLogger(__name__)

# A multipart POST's photo: the file field several GeoReport servers take beside media_url; the largest text field.
MEDIA_FIELD = "media"
MAX_FIELD_BYTES = 64 * 1024
# The largest form or JSON body read (its description at most 4,000 characters, an address 300: a few KiB).
MAX_BODY_BYTES = 256 * 1024
FORMATS = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
# XML element of each list item, by the name of the list.
XML_ITEMS = {
    "services": "service",
    "service_requests": "request",
    "service_request_updates": "request_update",
    "errors": "error",
    "attributes": "attribute",
    "values": "value",
}


def _xml_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _xml_fill(parent: ET.Element, data: Mapping[str, Any]) -> None:
    for key, value in data.items():
        child = ET.SubElement(parent, key)
        if isinstance(value, list):
            item_tag = XML_ITEMS.get(key, "item")
            for item in value:
                _xml_fill(ET.SubElement(child, item_tag), item)
        else:
            child.text = _xml_text(value)


def to_xml(root: str, payload: list[dict[str, Any]] | dict[str, Any]) -> bytes:
    """Open311 XML: a list becomes ``<root><item>…</item></root>``, a mapping ``<root>…fields…</root>``."""
    element = ET.Element(root)
    if isinstance(payload, list):
        for item in payload:
            _xml_fill(ET.SubElement(element, XML_ITEMS[root]), item)
    else:
        _xml_fill(element, payload)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(element, encoding="utf-8")


def render(fmt: str, root: str, payload: list[dict[str, Any]] | dict[str, Any], status: int = 200) -> Response:
    if fmt == "xml":
        return Response(to_xml(root, payload), status_code=status, media_type=FORMATS["xml"])
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return Response(body.encode(), status_code=status, media_type=FORMATS["json"])


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValidationFailed(f"format {fmt!r} is not supported (json or xml)", details={"field": "format"})
    return fmt


_STATUS = {422: 400}  # Open311 reports every invalid argument as 400


def error_response(fmt: str, exc: BaseException) -> Response:
    headers: dict[str, str] = {}
    if isinstance(exc, CityhubError):
        status, description, headers = exc.http_status, exc.message, exc.http_headers
    elif isinstance(exc, RequestValidationError):
        problems = [
            f"{'.'.join(str(p) for p in e['loc'] if p != 'query')}: {schema_message(e['msg'])}" for e in exc.errors()
        ]
        status, description = 400, "; ".join(problems) or "invalid request"
    elif isinstance(exc, StarletteHTTPException):
        status, description = exc.status_code, str(exc.detail)
    else:
        log.exception("Open311 request failed", exc_info=exc)
        status, description = 500, "internal error; the incident has been logged"
    status = _STATUS.get(status, status)
    response = render(
        fmt if fmt in FORMATS else "json", "errors", [{"code": status, "description": description}], status
    )
    response.headers.update(headers)
    return response


class Open311Route(MeteredRoute):
    def render_error(self, request: Request, exc: Exception) -> Response | None:
        return error_response(str(request.path_params.get("fmt", "json")), exc)


router = APIRouter(prefix="/open311/v2", tags=["open311"], route_class=Open311Route)


@dataclass(frozen=True)
class PostArguments:
    """The arguments of a POST: the query string overridden by the body's; ``unreadable`` says what is wrong with a
    body that could not be read (then only the query string's arguments, and the key of a form whose text is not
    UTF-8, are known)."""

    params: dict[str, str]
    unreadable: str | None = None
    # The photos of a multipart POST (the ``media`` file, as several GeoReport servers take it beside media_url).
    uploads: list[Upload] = field(default_factory=list)


def _form_pairs(body: bytes) -> list[tuple[str, str]]:
    """A url-encoded form's fields; UnicodeDecodeError when the form or one of its percent-escaped values is not
    UTF-8 (``parse_qsl`` would put U+FFFD in their place unseen)."""
    return parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, errors="strict")


def _not_utf8_field(body: bytes) -> str:
    """The name of the first field of the form ``body`` whose text is not UTF-8 ("" when none can be told)."""
    for part in body.split(b"&"):
        try:
            _form_pairs(part)
        except UnicodeDecodeError:
            return unquote_plus(part.partition(b"=")[0].decode("utf-8", "replace"))
    return ""


_JSON_KINDS = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "true or false",
}


def _json_params(data: dict[str, Any], params: dict[str, str]) -> str | None:
    """Put a JSON object's parameters into ``params`` as a form's would be (text; true/false as those words, null as
    empty); an ``attribute`` object as the form's ``attribute[code]`` fields. Returns the first problem, naming the
    parameter: a value that is no parameter's (an array, an object elsewhere) was stored as Python's text for it.
    The readable parameters are all kept, the ``api_key`` among them, so that a wrong key is still answered as such."""
    problem = None
    for key, value in data.items():
        if key == "attribute" and isinstance(value, dict):
            found = _json_params({f"attribute[{code}]": item for code, item in value.items()}, params)
        elif isinstance(value, dict | list):
            found = f"the JSON parameter {key!r} must be a string or a number, not {_JSON_KINDS.get(type(value))}"
        else:
            params[str(key)] = "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
            found = None
        problem = problem or found
    return problem


async def form_params(request: Request) -> PostArguments:
    """Arguments of a POST: the query string, overridden by a url-encoded form or a JSON object body. A body that
    cannot be read is not refused here: :func:`post_request` first checks the key it can find (the body may hold
    the key, so a refusal before it would answer a wrong key with the body's problem)."""
    params = dict(request.query_params)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        return await _multipart(request, params)  # streamed: its files are not read whole into memory first
    body = await read_capped(request, MAX_BODY_BYTES)  # a request's text is a few KiB, its photo a multipart file
    if body is None:
        return PostArguments(params, f"the body is larger than {MAX_BODY_BYTES // 1024} KiB (a service request's text)")
    if not body:
        return PostArguments(params)
    if content_type == "application/json":
        try:
            data = json.loads(body)
        except UnicodeDecodeError:
            return PostArguments(params, "the JSON body is not UTF-8")
        except json.JSONDecodeError as exc:
            return PostArguments(
                params, f"the body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
            )
        if not isinstance(data, dict):
            return PostArguments(
                params, f"the JSON body must be an object of parameters, not {_JSON_KINDS.get(type(data), 'null')}"
            )
        problem = _json_params(data, params)
        if problem:
            return PostArguments(params, problem)
    elif content_type in ("application/x-www-form-urlencoded", ""):
        try:
            params.update(_form_pairs(body))
        except UnicodeDecodeError:
            # The key is ASCII: read it from the form as it can be read, to answer a wrong one as such.
            lenient = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
            if "api_key" in lenient:
                params["api_key"] = lenient["api_key"]
            field = _not_utf8_field(body)
            where = f" (field {field})" if field else ""
            return PostArguments(params, f"the form is not UTF-8{where}: send its text in UTF-8")
    else:
        return PostArguments(
            params,
            f"content type {content_type!r} is not supported; send application/x-www-form-urlencoded "
            "(or application/json, or multipart/form-data with a media file)",
        )
    return PostArguments(params)


async def _multipart(request: Request, params: dict[str, str]) -> PostArguments:
    """A multipart POST's fields, and its ``media`` file(s) read up to one byte past the largest size taken (the
    order's files' rules refuse a larger one by name). Another file field is a problem naming it."""
    from starlette.formparsers import MultiPartException

    try:
        pairs, found = await files.read_multipart(
            request,
            limit=files.read_limit(),
            max_files=files.get_file_settings().max_count,
            max_fields=100,
            max_part_size=MAX_FIELD_BYTES,
        )
    except MultiPartException as exc:
        return PostArguments(params, f"the multipart body cannot be read: {exc.message}")
    except UnicodeDecodeError:
        return PostArguments(params, "the form is not UTF-8: send its text in UTF-8")
    params.update(pairs)
    others = [key for key, _ in found if key != MEDIA_FIELD]
    problem = f"the file field {others[0]!r} is not taken; send the photo as {MEDIA_FIELD!r}" if others else None
    return PostArguments(params, problem, [upload for key, upload in found if key == MEDIA_FIELD and upload.given])


@takes(API_KEY, optional=True)
def optional_caller(
    request: Request,
    api_key: Annotated[str | None, Query()] = None,
    x_api_key: Annotated[str | None, Header(description="API key, as the api_key parameter")] = None,
) -> Caller | None:
    """A key given with a public GET identifies (and rate-limits and counts) its client."""
    raw_key = api_key or x_api_key
    return authorize(request, raw_key=raw_key, scope=None) if raw_key else None


OptionalCaller = Annotated[Caller | None, Depends(optional_caller)]


@router.get("/services.{fmt}", summary="GET Service List")
def services(fmt: str, db: MeteredDb, _caller: OptionalCaller, jurisdiction_id: str | None = None) -> Response:
    """Every service (level-2 category) with its code, name, group and keywords."""
    return render(check_format(fmt), "services", georeport.list_services(db))


@router.get("/services/{service_code}.{fmt}", summary="GET Service Definition")
def service_definition(
    service_code: str, fmt: str, db: MeteredDb, _caller: OptionalCaller, jurisdiction_id: str | None = None
) -> Response:
    """The attributes a request for this service may carry."""
    check_format(fmt)
    return render(fmt, "service_definition", georeport.service_definition(db, service_code=service_code))


@router.post("/requests.{fmt}", summary="POST Service Request", status_code=201)
@takes(API_KEY)  # read from the form, the JSON body, the query or X-API-Key below
def post_request(
    fmt: str, request: Request, db: MeteredDb, arguments: Annotated[PostArguments, Depends(form_params)]
) -> Response:
    """Create a service request (an order of channel app) and return its id and token. The key comes as GeoReport
    has it, ``api_key`` (form field, JSON key or query parameter), or in ``X-API-Key`` as on the data-sharing API.
    Who calls is answered first: a body that cannot be read (400, naming what is wrong) is refused after the key
    found outside it (or in a form that is not UTF-8) is checked, and when none is found, saying that its key could
    not be read either."""
    check_format(fmt)
    params = arguments.params
    raw_key = params.get("api_key") or request.headers.get("x-api-key")
    if arguments.unreadable is not None and not raw_key:
        raise ValidationFailed(f"{arguments.unreadable} (nor could its api_key be read)", details={"field": "body"})
    caller = authorize(request, raw_key=raw_key, scope="open311:write")
    if arguments.unreadable is not None:
        raise ValidationFailed(arguments.unreadable, details={"field": "body"})
    receipt = georeport.create_request(db, params=params, caller=caller, uploads=arguments.uploads)
    return render(fmt, "service_requests", [receipt], status=201)


# The date window of the lists, as georeport.list_requests and list_updates read it (GeoReport's 90-day default span).
WINDOW_START = (
    "W3C date-time with its offset: the window's start; given alone, the window is the 90 days after it (not up to "
    "now); with end_date, the window may not span more than 90 days (GeoReport v2; a longer one is a 400 naming both)"
)
WINDOW_END = (
    "the window's end; given alone, the 90 days before it; neither given: the last 90 days; with start_date, at most "
    "90 days after it (a longer span is a 400 naming both)"
)


@router.get("/requests.{fmt}", summary="GET Service Requests")
def get_requests(
    fmt: str,
    request: Request,
    db: MeteredDb,
    caller: OptionalCaller,
    service_request_id: str | None = None,
    service_code: str | None = None,
    start_date: Annotated[str | None, Query(description=WINDOW_START)] = None,
    end_date: Annotated[str | None, Query(description=WINDOW_END)] = None,
    status: str | None = None,
    jurisdiction_id: str | None = None,
    page: Annotated[int | None, Query(ge=1, le=1_000_000, description="extension: the page, from 1")] = None,
    page_size: Annotated[
        int | None, Query(ge=1, le=georeport.MAX_REQUESTS, description="extension: requests a page (default 1000)")
    ] = None,
) -> Response:
    """Requests by id list, or by service, status and date window (default: last 90 days, at most 1,000), newest
    first; ``page`` and ``page_size`` (an extension, as many GeoReport servers have) page them."""
    check_format(fmt)
    items = georeport.list_requests(
        db,
        service_request_id=service_request_id,
        service_code=service_code,
        start_date=start_date,
        end_date=end_date,
        status=status,
        client_id=caller.client_id if caller else None,
        page=page,
        page_size=page_size,
        media_link=media_link(request),
    )
    return render(fmt, "service_requests", items)


@router.get("/requests/{service_request_id}.{fmt}", summary="GET Service Request")
def get_request(
    service_request_id: str,
    fmt: str,
    request: Request,
    db: MeteredDb,
    caller: OptionalCaller,
    jurisdiction_id: str | None = None,
) -> Response:
    check_format(fmt)
    client_id = caller.client_id if caller else None
    found = georeport.get_request(
        db, service_request_id=service_request_id, client_id=client_id, media_link=media_link(request)
    )
    return render(fmt, "service_requests", found)


def media_link(request: Request) -> georeport.MediaLink:
    """The absolute address of a published photo by its token, as this request reached the server (its scheme and
    host — a proxy's, from its forwarded headers — and root path): ``request.url_for`` of :func:`media`."""
    return lambda token: str(request.url_for("open311_media", token=token))


# A published photo may be withdrawn: shared caches keep it 5 minutes at most.
MEDIA_CACHE = "public, max-age=300"


@router.get(
    "/media/{token}",
    name="open311_media",
    summary="GET a published photo (extension)",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}}, "description": "the photo, an upright JPEG without EXIF"}},
)
def media(token: str, db: MeteredDb) -> FileResponse:
    """A photo of a request that staff published (公开) — what ``media_url`` links: an upright JPEG copy of at most
    2,048 px without its EXIF (no GPS position, no device), to anyone, no key; 404 for a token no published photo
    has (never published, or withdrawn since)."""
    path = files.public_copy(db, token)
    return FileResponse(
        path,
        media_type="image/jpeg",
        headers={
            "Cache-Control": MEDIA_CACHE,
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": 'inline; filename="photo.jpg"',
            "Content-Security-Policy": files.CONTENT_POLICY,
        },
    )


@router.get("/tokens/{token}.{fmt}", summary="GET service_request_id from a token")
def get_token(
    token: str, fmt: str, db: MeteredDb, _caller: OptionalCaller, jurisdiction_id: str | None = None
) -> Response:
    check_format(fmt)
    return render(fmt, "service_requests", georeport.get_token(db, token=token))


@router.get("/servicerequestupdates.{fmt}", summary="GET Service Request Updates (extension)")
def get_updates(
    request: Request,
    fmt: str,
    db: MeteredDb,
    caller: OptionalCaller,
    start_date: Annotated[str | None, Query(description=WINDOW_START)] = None,
    end_date: Annotated[str | None, Query(description=WINDOW_END)] = None,
    service_request_id: str | None = None,
    jurisdiction_id: str | None = None,
    page: Annotated[int | None, Query(ge=1, le=1_000_000, description="extension: the page, from 1")] = None,
    page_size: Annotated[
        int | None, Query(ge=1, le=georeport.MAX_REQUESTS, description="extension: updates a page (default 1000)")
    ] = None,
) -> Response:
    """Public changes of requests from the audit trail, oldest first (default: last 90 days, at most 1,000);
    ``page`` and ``page_size`` (as for the requests) page them — give ``start_date`` too, so that the window does not
    move between the pages."""
    check_format(fmt)
    items = georeport.list_updates(
        db,
        start_date=start_date,
        end_date=end_date,
        service_request_id=service_request_id,
        client_id=caller.client_id if caller else None,
        page=page,
        page_size=page_size,
        media_link=media_link(request),
    )
    return render(fmt, "service_request_updates", items)
