"""Documents: ingest (JSON, batch, or file upload), list, read, delete."""

from __future__ import annotations

import json
from email.message import Message
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from ragcorp_service.api.bodies import body_schema, json_body, parsed, unprocessable
from ragcorp_service.api.deps import AskAllowed, IngestAllowed, SettingsDep, StateDep
from ragcorp_service.api.errors import InvalidRequest, RequestTooLarge
from ragcorp_service.api.ingest_slots import IngestSlot
from ragcorp_service.api.json_values import json_safe, value_problem
from ragcorp_service.api.schemas import (
    ChunkOut,
    Collection,
    DocumentBatchIn,
    DocumentDetailOut,
    DocumentIn,
    DocumentListOut,
    DocumentOut,
    DocumentPatch,
    DocumentsOut,
    UploadFields,
)
from ragcorp_service.ingestion.chunking import is_visible
from ragcorp_service.ingestion.isolated_parsing import parse_isolated
from ragcorp_service.ingestion.parsing import SUPPORTED_EXTENSIONS
from ragcorp_service.ingestion.pipeline import IngestItem, IngestResult
from ragcorp_service.settings import Settings

router = APIRouter(prefix="/v1/documents", tags=["documents"])


def _upload_body() -> dict[str, Any]:
    """The upload's OpenAPI body (JSON or multipart), built per use: FastAPI merges it into its own."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/DocumentIn"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["files"],
                        "properties": {
                            "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                            "collection": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"},
                            "metadata": {"type": "string", "description": "A JSON object applied to every file."},
                        },
                    }
                },
            },
        }
    }


def _out(result: IngestResult) -> DocumentOut:
    return DocumentOut(**vars(result.document), created=result.created)


def _check_length(settings: Settings, name: str, text: str) -> None:
    if len(text) > settings.max_document_chars:
        raise RequestTooLarge(
            f"{name} has {len(text)} characters; the limit is {settings.max_document_chars} (MAX_DOCUMENT_CHARS)"
        )


def _item(document: DocumentIn) -> IngestItem:
    return IngestItem(**document.model_dump())


async def _form_items(request: Request, settings: Settings) -> list[IngestItem]:
    try:
        form = await request.form(max_files=settings.max_upload_files, max_fields=10)
    except StarletteHTTPException as exc:  # Starlette reports multipart limits as a plain 400
        if exc.status_code in (408, 413):  # the body's own limits (size, stall): as for JSON bodies
            raise
        if "files" in str(exc.detail).lower():
            raise RequestTooLarge(
                f"upload has more than {settings.max_upload_files} files (MAX_UPLOAD_FILES)"
            ) from None
        raise InvalidRequest([], f"malformed multipart body: {exc.detail}", "multipart_invalid") from None
    try:
        files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
        if not files:
            raise InvalidRequest(["files"], "Field required: at least one file", "missing")
        fields = _form_fields(form)
        items = []
        for index, upload in enumerate(files):
            name = upload.filename or "upload.txt"
            if problem := value_problem(name):
                raise InvalidRequest(["files", index], f"file name: {problem}", input=name)
            parsed = await parse_isolated(
                name, await upload.read(), settings.parse_timeout_seconds, _declared_charset(upload)
            )
            if not is_visible(parsed.text):
                raise InvalidRequest(["files", index], f"{name}: no text could be extracted", input=name)
            _check_length(settings, name, parsed.text)
            items.append(
                IngestItem(
                    title=parsed.title,
                    text=parsed.text,
                    collection=fields.collection,
                    source=name,
                    metadata={**fields.metadata, "media_type": parsed.media_type},
                )
            )
        return items
    finally:
        await form.close()


def _form_fields(form: FormData) -> UploadFields:
    """The form's other fields, validated as the JSON body's are: unknown names refused, one value each."""
    values: dict[str, Any] = {}
    for name, value in form.multi_items():
        if name == "files":
            continue
        if name in values:
            raise InvalidRequest([name], "Field given more than once", input=name)
        if not isinstance(value, str):
            raise InvalidRequest([name], "Field should be text, not a file", "string_type")
        values[name] = _form_json(value) if name == "metadata" else value
    try:
        return UploadFields.model_validate(values)
    except ValidationError as exc:
        raise unprocessable(exc) from None


def _declared_charset(upload: UploadFile) -> str | None:
    """The charset parameter of the file part's Content-Type (`text/html; charset=iso-8859-1`), if any."""
    message = Message()
    message["content-type"] = upload.headers.get("content-type", "application/octet-stream")
    return message.get_content_charset()


def _form_json(raw: str) -> Any:
    """The metadata field's JSON, refusing what json.loads lets through or chokes on (see json_values)."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # ValueError covers bad JSON and 4,300+ digit integers
        raise InvalidRequest(["metadata"], f"Invalid JSON: {json_safe(str(exc))}", "json_invalid") from None
    problem = value_problem(value)
    if problem:
        raise InvalidRequest(["metadata"], problem)
    return value


@router.post(
    "",
    openapi_extra=_upload_body(),
    responses={
        201: {"model": DocumentOut, "description": "Stored (JSON body); multipart returns {documents: [...]}"},
        200: {"model": DocumentOut, "description": "Identical content was already stored"},
        413: {"description": "Body or text over its limit"},
        415: {"description": "Unsupported or unreadable file"},
    },
)
async def ingest(
    request: Request, response: Response, state: StateDep, settings: SettingsDep, caller: IngestAllowed, _: IngestSlot
) -> Any:
    """Ingest one document as JSON, or files as `multipart/form-data` (.txt, .md, .html, .pdf)."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        results = await state.documents.ingest(await _form_items(request, settings), caller.collections)
        response.status_code = 201 if any(r.created for r in results) else 200
        return DocumentsOut(documents=[_out(r) for r in results])
    if not content_type.startswith("application/json"):
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            f"send application/json or multipart/form-data; supported files: {', '.join(SUPPORTED_EXTENSIONS)}",
        )
    document = parsed(DocumentIn, await request.body())
    _check_length(settings, "text", document.text)
    [result] = await state.documents.ingest([_item(document)], caller.collections)
    response.status_code = 201 if result.created else 200
    return _out(result)


@router.post("/batch", response_model=DocumentsOut, status_code=201, openapi_extra=body_schema(DocumentBatchIn))
async def ingest_batch(
    response: Response,
    state: StateDep,
    settings: SettingsDep,
    caller: IngestAllowed,
    _: IngestSlot,
    batch: Annotated[DocumentBatchIn, json_body(DocumentBatchIn, max_bytes=None)],
) -> DocumentsOut:
    """Ingest up to MAX_BATCH_DOCUMENTS documents; they are embedded together, which is faster."""
    if len(batch.documents) > settings.max_batch_documents:
        raise RequestTooLarge(
            f"batch has {len(batch.documents)} documents; the limit is "
            f"{settings.max_batch_documents} (MAX_BATCH_DOCUMENTS)"
        )
    for index, document in enumerate(batch.documents):
        _check_length(settings, f"documents[{index}].text", document.text)
    results = await state.documents.ingest([_item(d) for d in batch.documents], caller.collections)
    if not any(r.created for r in results):
        response.status_code = 200
    return DocumentsOut(documents=[_out(r) for r in results])


@router.get("", response_model=DocumentListOut)
async def list_documents(
    state: StateDep,
    caller: AskAllowed,
    collection: Collection | None = None,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=10_000_000),
) -> DocumentListOut:
    records, total = await state.documents.page(
        collection=collection, limit=limit, offset=offset, allowed=caller.collections
    )
    return DocumentListOut(documents=[DocumentOut(**vars(r)) for r in records], total=total, limit=limit, offset=offset)


@router.get("/{document_id}", response_model=DocumentDetailOut, responses={404: {"description": "No such document"}})
async def get_document(
    state: StateDep, caller: AskAllowed, document_id: UUID, include_chunks: bool = False
) -> DocumentDetailOut:
    record = await state.documents.get(document_id, caller.collections)
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no document {document_id}")
    chunks = [ChunkOut(**vars(c)) for c in await state.documents.chunks(document_id)] if include_chunks else None
    return DocumentDetailOut(**vars(record), chunks=chunks)


@router.patch(
    "/{document_id}",
    response_model=DocumentOut,
    responses={404: {"description": "No such document"}},
    openapi_extra=body_schema(DocumentPatch),
)
async def update_document(
    caller: IngestAllowed,
    state: StateDep,
    document_id: UUID,
    body: Annotated[DocumentPatch, json_body(DocumentPatch)],
) -> DocumentOut:
    """Replace a document's title and/or metadata; its text, id and collection stay.

    A new title is re-embedded with the stored chunks (their ids stay); new metadata is
    used by the next filtered search. To change the text, ingest it again (a new document).
    """
    record = await state.documents.update(
        document_id, title=body.title, metadata=body.metadata, allowed=caller.collections
    )
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no document {document_id}")
    return DocumentOut(**vars(record))


@router.delete("/{document_id}", status_code=204, responses={404: {"description": "No such document"}})
async def delete_document(state: StateDep, caller: IngestAllowed, document_id: UUID) -> Response:
    deleted = await state.documents.delete(document_id, caller.collections)
    if not deleted:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no document {document_id}")
    return Response(status_code=204)
