"""Uploads as durable jobs: the bytes are staged in the vault and the job recorded before the API answers.

An uploaded document is named by its file name within its collection: its source is
``upload:<name>`` (``upload:売上.txt``), whichever replica took the upload and wherever a worker
materialises it, so uploading the same name again makes a new version of the same document, and
no upload can be mistaken for a file path, an ``s3://`` URI or another kind of source.

Names are kept as given, normalised to Unicode NFC, at most `MAX_NAME_CHARS` characters; a name
with a path separator or a control or formatting character is refused, never rewritten, so two
different names never become one document.

The submitting side (`submit_upload`) checks everything it can before the job exists (the
collection name, the ACL, the names, the sizes), stores each file under
``uploads/<job id>/<n>`` and enqueues the job; when anything fails, what it staged is deleted.
The working side (`run_upload`) re-derives the caller's access from the key record (a key revoked
or expired since fails the job, a key's grants are never widened), writes the files to a private
folder and ingests them; `discard_upload` deletes the staged objects once the job has ended, and
`sweep_staging` (a worker's housekeeping) deletes whatever a crash left: staged objects and working
copies of ended jobs, and those of requests that died before their job was recorded.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import tempfile
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from cairn._base import _document_access
from cairn.access import authorize
from cairn.auth import Principal
from cairn.errors import CairnError, Forbidden, InvalidRequest, LimitExceeded, NotFound
from cairn.ingest import IngestProgress
from cairn.jobs.queue import ClaimedJob, Job, JobQueue
from cairn.localfiles import private_dir
from cairn.models import FailedFile, FileWarning, IngestReport
from cairn.settings import validate_collection_name

if TYPE_CHECKING:
    from cairn.core import Cairn

__all__ = [
    "MAX_NAME_CHARS",
    "STAGING_GRACE_S",
    "STAGING_PREFIX",
    "UPLOAD",
    "IncomingFile",
    "discard_upload",
    "run_upload",
    "submit_upload",
    "sweep_staging",
    "upload_name",
    "upload_source",
    "validate_upload_name",
]

log = logging.getLogger(__name__)

UPLOAD = "upload"  # the job kind
SOURCE_PREFIX = "upload:"
STAGING_PREFIX = "uploads/"
MAX_NAME_CHARS = 200
_MAX_DISK_NAME_BYTES = 200  # file systems allow 255 bytes a name
_READ_BLOCK = 1024 * 1024
# Staged objects with no job row are swept only this long after they were written: the request that staged
# them may still be staging the rest or about to record its job.
STAGING_GRACE_S = 3600.0


@dataclass(frozen=True)
class IncomingFile:
    """One file of an upload request: the name the client gave and its bytes (a spooled stream)."""

    name: str | None
    stream: BinaryIO


def upload_source(name: str) -> str:
    """The source (identity) of the uploaded document named *name*."""
    return f"{SOURCE_PREFIX}{name}"


def upload_name(source: str) -> str | None:
    """The name of an uploaded document from its source; ``None`` for a source that is not an upload."""
    return source[len(SOURCE_PREFIX) :] if source.startswith(SOURCE_PREFIX) else None


def validate_upload_name(raw: str | None) -> str:
    """The name as given, NFC-normalised; `InvalidRequest` naming the rule it breaks."""
    name = unicodedata.normalize("NFC", raw or "")
    shown = name if len(name) <= 60 else f"{name[:57]}..."
    if not name.strip():
        raise InvalidRequest("every uploaded file needs a name")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidRequest(f"the file name {shown!r} has {len(name)} characters; the limit is {MAX_NAME_CHARS}")
    if "/" in name or "\\" in name or name in (".", ".."):
        raise InvalidRequest(f"the file name {shown!r} is a path; send the file's own name, without folders")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") for ch in name):
        raise InvalidRequest(f"the file name {shown!r} holds control or invisible formatting characters")
    return name


# -- submitting ----------------------------------------------------------------------------------------
def submit_upload(
    cairn: Cairn,
    queue: JobQueue,
    files: Sequence[IncomingFile],
    *,
    collection: str,
    tenant: str | None,
    allow: Sequence[str] | None,
    principal: Principal | None,
    max_bytes: int,
) -> Job:
    """Stage every file in the vault and enqueue their ingest; nothing is left behind when this raises.

    Raises `InvalidRequest` (bad collection, ACL, name, empty file: every problem at once),
    `LimitExceeded` (a file over *max_bytes*) or an `AuthError` before any job exists.
    """
    try:
        validate_collection_name(collection)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from exc
    authorize(principal, "ingest", collection)
    owner_tenant = tenant or (principal.tenant if principal is not None else "default")
    access = _document_access(owner_tenant, allow, principal)
    assert access is not None  # a tenant is always given
    cairn._check_tenant_may_write(collection, principal)
    if not files:
        raise InvalidRequest("the upload has no files; send one or more as `files`")
    names, problems = _names(files)
    if problems:
        raise InvalidRequest("; ".join(problems))

    job_id = secrets.token_hex(8)
    staged: list[dict[str, Any]] = []
    too_large: list[str] = []
    try:
        for number, (incoming, name) in enumerate(zip(files, names, strict=True)):
            data = _read(incoming.stream, max_bytes)
            if data is None:
                too_large.append(f"{name} is larger than the upload limit of {max_bytes} bytes")
            elif not data:
                problems.append(f"{name} is empty")
            else:
                key = f"{STAGING_PREFIX}{job_id}/{number}"
                cairn.vault.store.put(key, data)
                staged.append({"name": name, "key": key, "size": len(data)})
        if too_large:
            raise LimitExceeded("; ".join(too_large + problems))
        if problems:
            raise InvalidRequest("; ".join(problems))
        payload = {
            "files": staged,
            "allow": list(access.allowed) if access.allowed is not None else None,
            "key_id": principal.key_id if principal is not None else None,
        }
        owner = principal.key_id if principal is not None else "local"
        return queue.enqueue(UPLOAD, collection, access.tenant, owner, payload, job_id=job_id)
    except BaseException:
        _delete(cairn, [entry["key"] for entry in staged])
        raise


def _names(files: Sequence[IncomingFile]) -> tuple[list[str], list[str]]:
    names: list[str] = []
    problems: list[str] = []
    for incoming in files:
        try:
            name = validate_upload_name(incoming.name)
        except InvalidRequest as exc:
            problems.append(str(exc))
            continue
        if name in names:
            problems.append(f"two files are named {name!r}; a name is one document, so send each name once")
        names.append(name)
    return names, problems


def _read(stream: BinaryIO, limit: int) -> bytes | None:
    """The stream's bytes, or ``None`` once they pass *limit* (the rest is not read)."""
    blocks: list[bytes] = []
    size = 0
    while block := stream.read(_READ_BLOCK):
        size += len(block)
        if size > limit:
            return None
        blocks.append(block)
    return b"".join(blocks)


# -- working -----------------------------------------------------------------------------------------------
Progress = Callable[[int, int, str | None], None]


def run_upload(cairn: Cairn, job: ClaimedJob, progress: Progress) -> IngestReport:
    """Ingest the job's staged files as the key that uploaded them; the report names documents, not paths."""
    principal = _uploader(cairn, job.payload.get("key_id"))
    jobs_dir = private_dir(cairn.settings.home.absolute() / "jobs")
    for leftover in jobs_dir.glob(f"{job.job_id}-*"):  # an earlier attempt's files, if it died on this host
        shutil.rmtree(leftover, ignore_errors=True)
    workspace = Path(tempfile.mkdtemp(prefix=f"{job.job_id}-", dir=jobs_dir))
    try:
        sources: dict[str | Path, str] = {}
        missing: list[FailedFile] = []
        for number, entry in enumerate(job.payload["files"]):
            name: str = entry["name"]
            try:
                data = cairn.vault.store.get(entry["key"])
            except NotFound:
                missing.append(FailedFile(path=name, error="its uploaded bytes are no longer staged; upload it again"))
                continue
            folder = workspace / str(number)
            folder.mkdir(mode=0o700)
            path = folder / _disk_name(name)
            path.write_bytes(data)
            sources[str(path)] = upload_source(name)

        def step(update: IngestProgress) -> None:
            progress(update.total, update.done, upload_name(update.path) or Path(update.path).name)

        if sources:
            report = cairn.ingest(
                list(sources),
                collection=job.collection,
                tenant=job.tenant,
                allow=job.payload.get("allow"),
                principal=principal,
                progress=step,
                sources=sources,
            )
        else:
            report = IngestReport(collection=job.collection)
        report.files += len(missing)
        report.failed.extend(missing)
        names = {str(path): upload_name(source) or source for path, source in sources.items()}
        return _named(report, names, workspace)
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


def _uploader(cairn: Cairn, key_id: str | None) -> Principal | None:
    """The principal of the key that uploaded, as its record stands now; `Forbidden` if it may no longer act."""
    if key_id is None:
        return None  # the local administrator (a --dev service)
    try:
        record = cairn.keys.get(key_id)
    except NotFound as exc:
        raise Forbidden(f"the key {key_id} that made this upload no longer exists; upload the files again") from exc
    if record.revoked_at is not None:
        raise Forbidden(f"the key {key_id} that made this upload was revoked before the ingest ran")
    if record.expires_at is not None and record.expires_at <= time.time():
        raise Forbidden(f"the key {key_id} that made this upload expired before the ingest ran")
    return record.principal()


def _disk_name(name: str) -> str:
    """A file name for *name* on this disk: the name itself when it fits, else ``upload`` and its extension."""
    if len(name.encode()) <= _MAX_DISK_NAME_BYTES and not name.startswith("-"):
        return name
    suffix = Path(name).suffix
    return f"upload{suffix}" if suffix and len(suffix.encode()) <= 32 else "upload"


def _named(report: IngestReport, names: dict[str, str], workspace: Path) -> IngestReport:
    """*report* with each local path and source replaced by the document's name."""
    replacements = sorted(names.items(), key=lambda item: -len(item[0]))

    def clean(text: str) -> str:
        for path, name in replacements:
            text = text.replace(path, name)
        text = text.replace(str(workspace), "")
        return upload_name(text) or text

    for entries in (report.failed, report.skipped):
        entries[:] = [FailedFile(path=clean(entry.path), error=clean(entry.error)) for entry in entries]
    report.warnings = [FileWarning(path=clean(entry.path), message=clean(entry.message)) for entry in report.warnings]
    return report


# -- cleaning up ----------------------------------------------------------------------------------------------
def discard_upload(cairn: Cairn, job: ClaimedJob) -> None:
    """Delete the job's staged objects (its documents' bytes are in the vault's blobs by now)."""
    _delete(cairn, [entry["key"] for entry in job.payload.get("files", [])])


def sweep_staging(cairn: Cairn, queue: JobQueue, *, grace_s: float = STAGING_GRACE_S) -> int:
    """Delete what uploads left behind; return how many staged objects were deleted.

    - the staged objects of jobs that have ended (a worker may die between ending a job and deleting them);
    - the staged objects of a request that died before its job was recorded (or whose job was since
      forgotten): no job row, and nothing under ``uploads/<job>/`` written within *grace_s*;
    - this host's working copies (``CAIRN_HOME/jobs/<job>-*``) of jobs that have ended, or are unknown and
      older than *grace_s* (a worker killed mid-job leaves its copy; another worker may finish the job).
    """
    by_job: dict[str, list[tuple[str, float]]] = {}
    for key, written in cairn.vault.store.list_dated(STAGING_PREFIX):
        by_job.setdefault(key[len(STAGING_PREFIX) :].split("/", 1)[0], []).append((key, written))
    cutoff = time.time() - grace_s
    workspaces = _workspaces(cairn)
    ended = queue.finished(sorted(set(by_job) | set(workspaces)))
    # A job id staged long enough ago, or a working copy old enough, whose job the queue does not know.
    candidates = {job for job, entries in by_job.items() if max(written for _, written in entries) < cutoff}
    candidates |= {job for job, paths in workspaces.items() if all(_mtime(path) < cutoff for path in paths)}
    abandoned = {job for job in candidates - ended if not _known(queue, job)}
    keys = [key for job in sorted(ended | abandoned) for key, _ in by_job.get(job, [])]
    _delete(cairn, keys)
    for job in ended | abandoned:
        for path in workspaces.get(job, []):
            shutil.rmtree(path, ignore_errors=True)
    return len(keys)


def _workspaces(cairn: Cairn) -> dict[str, list[Path]]:
    """This host's working copies of upload jobs, by job id."""
    folder = cairn.settings.home.absolute() / "jobs"
    found: dict[str, list[Path]] = {}
    if folder.is_dir():
        for path in folder.iterdir():
            if path.is_dir() and "-" in path.name:
                found.setdefault(path.name.split("-", 1)[0], []).append(path)
    return found


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _known(queue: JobQueue, job_id: str) -> bool:
    try:
        queue.get(job_id)
    except NotFound:
        return False
    return True


def _delete(cairn: Cairn, keys: Sequence[str]) -> None:
    for key in keys:
        try:
            cairn.vault.store.delete(key)
        except CairnError as exc:  # left for `sweep_staging`; the job's outcome stands
            log.warning("could not delete the staged upload %s: %s", key, exc)
