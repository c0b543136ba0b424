"""The audit log's Merkle tree over HTTP: checkpoints, proofs, receipts, tiles, witnesses.

Two routers:

* ``api_router`` (under ``/v1``, authenticated): auditors sign checkpoints and fetch proofs
  against any signed checkpoint; a requester fetches the receipt proof of its event against a
  *published* (witnessed) checkpoint; the notification system fetches the proof of the
  disclosure a notice is about.
* ``public_router`` (``/v1/log``): the content-free view (checkpoints, tree hashes, proofs,
  C2SP tlog-tiles) and the witnesses' side (the newest signed checkpoint, cosignature
  submission). Open to anyone when the policy says ``[log] public = true``; otherwise it
  needs an auditor's or admin's key, like the transparency report. Nothing under ``/v1/log``
  ever holds an event body, a pseudonym, a case or an instrument.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy import select

from app.api.deps import (
    Auditor,
    Credentials,
    Notifier,
    RuntimeDep,
    authenticate,
    require_roles,
)
from app.audit import tlog
from app.audit.schemas import ConsistencyProof, CosignedOut, InclusionProof, LogKey
from app.callers.models import Role
from app.callers.service import Caller
from app.core.database import state_errors
from app.core.models import table_of
from app.core.problems import (
    BulwarkError,
    ForbiddenError,
    RequestInvalid,
    problem_responses,
)
from app.core.reasons import Reason
from app.disclosures.models import Disclosure
from app.notices.models import Notice
from app.runtime import Runtime

api_router = APIRouter(tags=["log"])
public_router = APIRouter(prefix="/v1/log", tags=["log"])

NOTE_TYPE = "text/plain; charset=utf-8"
READERS = frozenset({Role.AUDITOR, Role.ADMIN})
MAX_COSIGNATURE_BYTES = 16 * 1024

OldSize = Annotated[int, Query(ge=0, le=2**62, description="The older tree size (0: empty).")]
NewSize = Annotated[int, Query(ge=0, le=2**62, description="The newer tree size.")]

#: Who may fetch the proof of a receipt: whoever may be given one.
ReceiptHolder = Annotated[Caller, Depends(require_roles(Role.REQUESTER, Role.AUDITOR, Role.ADMIN))]


def start_checkpointer(runtime: Runtime) -> tlog.Checkpointer:
    """The process's periodic checkpoint signer (``BULWARK_LOG_CHECKPOINT_SECONDS``)."""
    checkpointer = tlog.Checkpointer(
        runtime.state, log_config(runtime), runtime.settings.log_checkpoint_seconds
    )
    checkpointer.start()
    return checkpointer


def log_config(runtime: Runtime) -> tlog.LogConfig:
    """The log's signer and witnesses, built at start (app/runtime.py)."""
    config = runtime.log
    if config is None:
        raise AssertionError("build_runtime sets the log")
    return config


async def _guard(coro: Any) -> Any:
    with state_errors():
        return await coro


async def _inclusion(
    runtime: Runtime, index: int, size: int | None, *, published: bool
) -> InclusionProof:
    """The inclusion proof of leaf ``index`` in the checkpoint of ``size`` (None: newest)."""
    proof = await _guard(
        tlog.inclusion(runtime.state, log_config(runtime), index, size, published=published)
    )
    return InclusionProof.model_validate(proof)


async def _consistency(
    runtime: Runtime, old: int, new: int, *, published: bool, any_old: bool = False
) -> ConsistencyProof:
    """The consistency proof between the checkpoints of sizes ``old`` and ``new``."""
    proof = await _guard(
        tlog.consistency(
            runtime.state, log_config(runtime), old, new, published=published, any_old=any_old
        )
    )
    return ConsistencyProof.model_validate(proof)


# --------------------------------------------------------------------------- /v1 (keys)


@api_router.post(
    "/audit/log/checkpoints",
    operation_id="signLogCheckpoint",
    summary="Sign a checkpoint of the Merkle tree as it now stands (C2SP signed note)",
    response_class=PlainTextResponse,
    responses={
        200: {"content": {NOTE_TYPE: {"schema": {"type": "string"}}}},
        **problem_responses(503),
    },
)
async def sign(runtime: RuntimeDep, caller: Auditor) -> Response:
    """Run it on a schedule (or `bulwark audit log-checkpoint`); witnesses then cosign it."""
    checkpoint = await _guard(tlog.sign_checkpoint(runtime.state, log_config(runtime)))
    return PlainTextResponse(checkpoint.full, media_type=NOTE_TYPE)


@api_router.get(
    "/audit/proofs/inclusion",
    operation_id="getInclusionProof",
    summary="Inclusion proof of an event in a signed checkpoint",
    response_model=InclusionProof,
    responses=problem_responses(404, 422, 503),
)
async def inclusion_for_auditors(
    runtime: RuntimeDep,
    caller: Auditor,
    seq: int = Query(ge=1, le=2**62, description="The event's sequence number."),
    size: int | None = Query(None, ge=1, le=2**62, description="A checkpointed tree size."),
) -> InclusionProof:
    """Against any checkpoint the log signed (default: the newest); see docs/auditors.md."""
    return await _inclusion(runtime, seq - 1, size, published=False)


@api_router.get(
    "/audit/proofs/consistency",
    operation_id="getConsistencyProof",
    summary="Consistency proof between two signed checkpoints",
    response_model=ConsistencyProof,
    responses=problem_responses(404, 422, 503),
)
async def consistency_for_auditors(
    runtime: RuntimeDep,
    caller: Auditor,
    old: OldSize,
    new: NewSize,
) -> ConsistencyProof:
    """Both sizes must have been checkpointed (an old size of 0 is the empty tree)."""
    return await _consistency(runtime, old, new, published=False)


@api_router.get(
    "/receipts/{seq}",
    operation_id="getReceiptProof",
    summary="The inclusion proof of a decision's event against a published checkpoint",
    response_model=InclusionProof,
    responses=problem_responses(404, 422, 503),
)
async def receipt(
    runtime: RuntimeDep,
    seq: Annotated[int, Path(ge=1, le=2**62)],
    caller: ReceiptHolder,
) -> InclusionProof:
    """Any answer that recorded a decision carried `audit.leaf_index` and `leaf_hash`; this
    proves that leaf is in a checkpoint the witnesses cosigned. 404 `log.no_checkpoint`
    until one containing it is published."""
    return await _inclusion(runtime, seq - 1, None, published=True)


NoticeId = Annotated[str, Path(min_length=36, max_length=36, pattern=r"^[0-9a-f-]{36}$")]


@api_router.get(
    "/notices/{notice_id}/proof",
    operation_id="getNoticeProof",
    summary="For a patron's notice: the proof that the disclosure was logged",
    response_model=InclusionProof,
    responses=problem_responses(404, 503),
)
async def notice_proof(
    notice_id: NoticeId,
    runtime: RuntimeDep,
    caller: Notifier,
) -> InclusionProof:
    """Only once the notice may be given (after any nondisclosure date), like the notice."""
    today = dt.datetime.now(dt.UTC).date()
    notices, disclosures = table_of(Notice), table_of(Disclosure)

    async def find() -> int | None:
        async with runtime.state.connect() as conn:
            row = (
                await conn.execute(
                    select(disclosures.c.audit_seq)
                    .join(notices, notices.c.disclosure_id == disclosures.c.id)
                    .where(notices.c.id == notice_id, notices.c.not_before <= today)
                )
            ).first()
        return None if row is None else int(row.audit_seq)

    seq = await _guard(find())
    if seq is None:
        raise BulwarkError(Reason.REQUEST_NOT_FOUND, "No such notice, or not yet due.")
    return await _inclusion(runtime, seq - 1, None, published=True)


# --------------------------------------------------------------------------- /log (public view)


async def _reader(request: Request, runtime: Runtime, credentials: Any) -> None:
    """Anyone when the policy publishes the log; otherwise an auditor's or admin's key."""
    public = runtime.policy.policy.log.public
    if credentials is None and public:
        return
    caller = await authenticate(request, credentials)  # no key: 401, as everywhere under /v1
    if caller.role not in READERS and not public:
        raise ForbiddenError()


@public_router.get(
    "/checkpoint",
    operation_id="getPublishedCheckpoint",
    summary="The newest published checkpoint, with its witnesses' cosignatures",
    response_class=PlainTextResponse,
    responses={
        200: {"content": {NOTE_TYPE: {"schema": {"type": "string"}}}},
        **problem_responses(401, 403, 429, 404, 503),
    },
)
async def published_checkpoint(
    request: Request, runtime: RuntimeDep, credentials: Credentials
) -> Response:
    """C2SP tlog-checkpoint; verify it with the key under `/log/key`."""
    await _reader(request, runtime, credentials)
    checkpoint = await _guard(tlog.latest_published(runtime.state, log_config(runtime)))
    # Bulwark's security headers keep ``Cache-Control: no-store`` on every answer; a mirror
    # that wants tiles cached copies them (they never change once served).
    return PlainTextResponse(checkpoint.full, media_type=NOTE_TYPE)


@public_router.get(
    "/key",
    operation_id="getLogKey",
    summary="The log's public key (C2SP verifier key) and its witnesses' keys",
    response_model=LogKey,
    responses=problem_responses(401, 403, 429, 404),
)
async def log_key(request: Request, runtime: RuntimeDep, credentials: Credentials) -> Any:
    """`origin`, `vkey`, the `witnesses` and how many must cosign (`required_witnesses`)."""
    await _reader(request, runtime, credentials)
    config = log_config(runtime)
    return {
        "origin": config.signer.name,
        "vkey": config.verifier.vkey,
        "witnesses": [w.vkey for w in config.witnesses],
        "required_witnesses": config.required,
    }


@public_router.get(
    "/proof/inclusion",
    operation_id="getPublicInclusionProof",
    summary="Inclusion proof of a leaf in a published checkpoint (hashes only)",
    response_model=InclusionProof,
    responses=problem_responses(401, 403, 429, 404, 422, 503),
)
async def public_inclusion(
    request: Request,
    runtime: RuntimeDep,
    credentials: Credentials,
    index: int = Query(ge=0, le=2**62),
    size: int | None = Query(None, ge=1, le=2**62),
) -> InclusionProof:
    """The leaf index is the receipt's `leaf_index`."""
    await _reader(request, runtime, credentials)
    return await _inclusion(runtime, index, size, published=True)


@public_router.get(
    "/proof/consistency",
    operation_id="getPublicConsistencyProof",
    summary="Consistency proof between two published checkpoints",
    response_model=ConsistencyProof,
    responses=problem_responses(401, 403, 429, 404, 422, 503),
)
async def public_consistency(
    request: Request,
    runtime: RuntimeDep,
    credentials: Credentials,
    old: OldSize,
    new: NewSize,
) -> ConsistencyProof:
    """What a mirror or monitor checks each new checkpoint with."""
    await _reader(request, runtime, credentials)
    return await _consistency(runtime, old, new, published=True)


#: The tile path as the document declares it (what ``_TILE`` and the width check accept).
TILE_PATH_PATTERN = (
    r"^(?:x[0-9]{3}/)*[0-9]{3}(?:\.p/(?:[1-9][0-9]?|1[0-9]{2}|2[0-4][0-9]|25[0-5]))?$"
)
_TILE = re.compile(r"^(?P<index>(?:x[0-9]{3}/)*[0-9]{3})(?:\.p/(?P<width>[1-9][0-9]{0,2}))?$")


def parse_tile_index(path: str) -> tuple[int, int]:
    """``x001/x234/067[.p/W]`` → (1234067, W or 256); RequestInvalid otherwise."""
    match = _TILE.fullmatch(path)
    if match is None:
        raise RequestInvalid("Not a tlog-tiles tile path.")
    index = int(match["index"].replace("x", "").replace("/", ""))
    width = int(match["width"]) if match["width"] else 256
    if width > 255 and match["width"]:
        raise RequestInvalid("A partial tile is 1 to 255 hashes wide.")
    return index, width


@public_router.get(
    "/tile/{level}/{rest:path}",
    operation_id="getTile",
    summary="A C2SP tlog-tiles Merkle tree tile (hashes only; no entry bundles)",
    # Bytes only: no JSON body is ever answered with 200.
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {"schema": {"type": "string"}}}},
        **problem_responses(401, 403, 429, 404, 422, 503),
    },
)
async def get_tile(
    request: Request,
    runtime: RuntimeDep,
    credentials: Credentials,
    level: Annotated[int, Path(ge=0, le=63)],
    rest: Annotated[str, Path(json_schema_extra={"pattern": TILE_PATH_PATTERN})],
) -> Response:
    """Entry bundles (`tile/entries/...`) are never served: the entries are the events."""
    await _reader(request, runtime, credentials)
    index, width = parse_tile_index(rest)
    data = await _guard(tlog.tile(runtime.state, log_config(runtime), level, index, width))
    return Response(data, media_type="application/octet-stream")


@public_router.get(
    "/witness/checkpoint",
    operation_id="getCheckpointToCosign",
    summary="The newest checkpoint the log signed, for witnesses to cosign",
    response_class=PlainTextResponse,
    responses={
        200: {"content": {NOTE_TYPE: {"schema": {"type": "string"}}}},
        **problem_responses(401, 403, 429, 404, 503),
    },
)
async def to_cosign(request: Request, runtime: RuntimeDep, credentials: Credentials) -> Response:
    """With the cosignatures it already has."""
    await _reader(request, runtime, credentials)
    checkpoint = await _guard(tlog.latest_signed(runtime.state))
    return PlainTextResponse(checkpoint.full, media_type=NOTE_TYPE)


@public_router.get(
    "/witness/consistency",
    operation_id="getWitnessConsistencyProof",
    summary="Consistency proof between two signed checkpoints, for witnesses",
    response_model=ConsistencyProof,
    responses=problem_responses(401, 403, 429, 404, 422, 503),
)
async def witness_consistency(
    request: Request,
    runtime: RuntimeDep,
    credentials: Credentials,
    old: OldSize,
    new: NewSize,
) -> ConsistencyProof:
    """Unlike `/v1/log/proof/consistency`, the new checkpoint need not be witnessed yet, and
    the old size need only be one the witness cosigned."""
    await _reader(request, runtime, credentials)
    return await _consistency(runtime, old, new, published=False, any_old=True)


@public_router.post(
    "/witness/cosignatures",
    operation_id="addCosignatures",
    summary="Submit a witness's cosignature(s): the checkpoint note with their lines added",
    response_model=CosignedOut,
    responses=problem_responses(401, 403, 429, 404, 413, 422, 503),
)
async def cosign(request: Request, runtime: RuntimeDep, credentials: Credentials) -> CosignedOut:
    """Only witnesses the policy names count; a bad line from one of them is 403
    `log.cosignature_invalid`, a note this log never signed 422 `log.checkpoint_forged`."""
    await _reader(request, runtime, credentials)
    raw = await request.body()
    if len(raw) > MAX_COSIGNATURE_BYTES:
        raise BulwarkError(Reason.REQUEST_TOO_LARGE)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BulwarkError(Reason.LOG_CHECKPOINT_MALFORMED, "The note is not UTF-8.") from None
    config = log_config(runtime)
    names = await _guard(tlog.add_cosignatures(runtime.state, config, text))
    size = int(text.split("\n", 2)[1])
    checkpoint = await _guard(tlog.checkpoint_at(runtime.state, size))
    return CosignedOut(size=size, witnesses=names, published=tlog.is_published(checkpoint, config))
