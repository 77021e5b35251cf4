"""The HTTP/JSON API of `akg serve`: each endpoint one call of the public Python API (akg.api).

Endpoints hold no logic of their own: they check the request's shape (pydantic, FastAPI), call the
API and return its `to_dict()`. What is common lives here once:

- Writes (curation) need `Authorization: Bearer TOKEN` (service.tokens); the token's name is the
  curator recorded in the change log. Reads need none.
- Limits: request bodies (MAX_BODY_BYTES, uploads MAX_UPLOAD_BYTES as the explorer's), batch sizes
  (MAX_BATCH), row limits, Cypher timeouts (those of `akg query`).
- Every error is `{"error": "one line"}` with a status that says whose fault it is: 400 bad input
  or a refused query, 401 no or unknown token, 404 no such thing, 409 a conflicting change, 413 too
  large, 422 a malformed request, 429 every console-query slot of the machine is busy
  (akg.readonly), 502 the graph server failed a query of ours, 503 the graph server is unreachable
  (with what to check), 504 a query ran past its time limit, 500 a bug (never a traceback).
- No CORS unless AKG_CORS_ORIGINS names origins.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
import anyio.to_thread
from fastapi import Depends, FastAPI, File, Form, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

import akg
from akg import __version__
from akg.config import Settings
from akg.errors import (AkgError, ConfigError, ConflictError, GraphError, GraphUnavailable, InputError, QueryBusy,
                        QueryRefused, QueryTimeout)
from service.state import Reconnecting, ServiceState
from service.tokens import TokenStore

MAX_BODY_BYTES = 1024 * 1024     # a JSON request body
MAX_BATCH = 256                  # pairs in one batch prediction, triples in one decision
MAX_LABELS_BYTES = 64 * 1024     # an uploaded list of labels
UPLOADS = ("/classify", "/tag", "/search/clip")  # the paths that take a clip: the upload limit, not MAX_BODY_BYTES
MAX_ROWS = 10_000                # rows of one Cypher query (akg query's --limit, capped)
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"  # model names and label set keys: never a path
Name = Annotated[str, Field(min_length=1, max_length=512)]


def _max_upload() -> int:
    from ui.uploads import MAX_UPLOAD_BYTES  # the explorer's limit: one rule for uploaded clips

    return MAX_UPLOAD_BYTES


def one_line(message: str) -> str:
    return "; ".join(line.strip() for line in str(message).splitlines() if line.strip()) or "failed"


class ErrorBody(BaseModel):
    error: str


ERRORS = {code: {"model": ErrorBody} for code in (400, 401, 404, 409, 413, 422, 429, 500, 502, 503, 504)}
Json = dict[str, Any]


# --- request bodies --------------------------------------------------------------------------------

class QueryBody(BaseModel):
    cypher: str = Field(min_length=1, max_length=100_000, description="read-only Cypher")
    params: dict[str, Any] = Field(default_factory=dict, description="its $parameters")
    timeout: float = Field(30.0, gt=0, le=3600, description="seconds before the query is stopped")
    limit: int = Field(1000, ge=1, le=MAX_ROWS, description="most rows to return")


class PredictBody(BaseModel):
    head: Name
    relation: Name
    k: int = Field(10, ge=1, le=1000)
    model: str | None = Field(None, pattern=NAME_PATTERN, description="a stored model's name; default the latest")


class SearchBody(BaseModel):
    text: str = Field(min_length=1, max_length=1000, description="what to find")
    index: str = Field(pattern=NAME_PATTERN, description="an index made by `akg index`")
    k: int = Field(10, ge=1, le=100)
    use_kge: bool = True


class Pair(BaseModel):
    head: Name
    relation: Name


class BatchBody(BaseModel):
    pairs: list[Pair] = Field(min_length=1, max_length=MAX_BATCH)
    k: int = Field(10, ge=1, le=1000)
    model: str | None = Field(None, pattern=NAME_PATTERN)


class Triple(BaseModel):
    head: Name
    relation: Name
    tail: Name

    def t(self) -> tuple[str, str, str]:
        return (self.head, self.relation, self.tail)


class DecisionBody(BaseModel):
    triples: list[Triple] = Field(min_length=1, max_length=MAX_BATCH)
    note: str | None = Field(None, max_length=2000)


class AddBody(Triple):
    note: str | None = Field(None, max_length=2000)


class EditBody(BaseModel):
    triple: Triple
    new_tail: Name
    note: str | None = Field(None, max_length=2000)


class RevertBody(BaseModel):
    change_id: str = Field(min_length=1, max_length=200)
    note: str | None = Field(None, max_length=2000)


# --- limits and errors -----------------------------------------------------------------------------

class BodyLimit:
    """Refuse request bodies over the limit (413) before they are read whole: by Content-Length, and
    by counting what arrives for bodies sent without one."""

    def __init__(self, app, limit_for: Callable[[str], int]):
        self.app, self.limit_for = app, limit_for

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        scope.setdefault("state", {})["started"] = time.monotonic()  # request.state.started: see ServiceState.lost
        limit = self.limit_for(scope.get("path", ""))
        length = dict(scope.get("headers") or []).get(b"content-length")
        too_large = JSONResponse({"error": f"the request body is larger than the limit of {limit} bytes"}, 413)
        try:
            if length is not None and int(length) > limit:
                return await too_large(scope, receive, send)
        except ValueError:
            return await JSONResponse({"error": "Content-Length is not a number"}, 400)(scope, receive, send)
        seen = 0
        flags = {"too_large": False, "started": False}

        async def counted():
            nonlocal seen
            if flags["too_large"]:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:  # the app sees the client leave; its answer to that is dropped below
                    flags["too_large"] = True
                    return {"type": "http.disconnect"}
            return message

        async def watched_send(message):
            if flags["too_large"]:
                return
            flags["started"] = flags["started"] or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched_send)
        except Exception:
            if not flags["too_large"]:
                raise
        if flags["too_large"] and not flags["started"]:
            await too_large(scope, receive, send)


STATUS = [(GraphUnavailable, 503), (QueryTimeout, 504), (QueryBusy, 429), (QueryRefused, 400),
          (ConflictError, 409), (InputError, 400), (ConfigError, 500), (GraphError, 502)]


def status_of(error: AkgError, path: str) -> int:
    if isinstance(error, GraphError) and not isinstance(error, GraphUnavailable) and path == "/query":
        return 400  # the server refused the Cypher someone typed: their query, not our fault
    if isinstance(error, InputError) and str(error).startswith(("no model named", "no trained model", "no usable model",
                                                                  "no index named")):
        return 404  # kge.store's words for a model that is not there, retrieval.store's for an index
    for kind, code in STATUS:
        if isinstance(error, kind):
            return code
    return 400


def install_error_handlers(app: FastAPI, debug: bool, paths: list[tuple[re.Pattern, str]]) -> None:
    """Errors as one line of JSON; the service's own folders (`paths`, server_paths) are named by their
    settings, never shown."""
    @app.exception_handler(AkgError)
    async def akg_error(request: Request, e: AkgError):
        if isinstance(e, GraphUnavailable) and not isinstance(e, Reconnecting):
            request.app.state.service.lost(since=getattr(request.state, "started", None))  # the next one reconnects
        return JSONResponse({"error": one_line(hide_paths(str(e), paths))}, status_of(e, request.url.path))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError):
        parts = []
        for err in e.errors()[:5]:
            where = ".".join(str(x) for x in err.get("loc", ()) if x != "body") or "request"
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        return JSONResponse({"error": one_line("; ".join(parts) or "invalid request")}, 422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException):
        return JSONResponse({"error": one_line(str(e.detail))}, e.status_code, headers=getattr(e, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, e: Exception):
        if debug:
            import traceback

            traceback.print_exc()
        kind = e.kind if isinstance(e, Unforeseen) else type(e).__name__
        return JSONResponse({"error": one_line(f"unexpected {kind}: {hide_paths(what_failed(e), paths)} (the service's "
                                               "log has more with AKG_DEBUG=1; please report it)")}, 500)


def what_failed(e: Exception) -> str:
    """An unforeseen error's text for a client. An OSError's text names the file it failed on, which may be
    anywhere on the server: what went wrong is said, where is left to the log."""
    return e.strerror if isinstance(e, OSError) and e.strerror else str(e)


class Unforeseen(Exception):
    """An unforeseen error (`kind`, its type's name) while the library read a staged upload, its text
    already naming the caller's files as the caller sent them: the 500 handler shows it as it shows the
    original (whose traceback, chained, is in the log)."""

    def __init__(self, original: Exception, text: str):
        super().__init__(text)
        self.kind = type(original).__name__


# --- what an answer may say about the server's disk ------------------------------------------------

# A match starts a path: at the message's start or after a space, quote, bracket or separator, never
# inside a longer path ("/data" in "/mnt/data/x.wav"). It ends one: before '/', a space, quote, bracket or
# separator, or a '.' that ends a sentence ("under /data."), never inside a longer name ("/data2",
# "/data.bak"). Anything else is left as it is: a rare leak of a path written oddly is a smaller harm
# than a garbled message.
_STARTS = r"(?<![^\s'\"`(\[{<=:,;])"
_ENDS = r"(?=$|[/\s'\"`,;:)\]}>]|\.(?:$|[\s'\"`)\]}>]))"


def server_paths(settings: Settings) -> list[tuple[re.Pattern, str]]:
    """The service's own folders, each with the setting that names it: an error shows `AKG_HOME/indexes`,
    which tells an operator where to look, instead of where the server keeps its files (a client has
    no business knowing). Longest first, so that a folder inside another keeps its own name.

    Only absolute forms are patterns (and '~/...' as given, which the library may echo): a relative value
    ("labels", or a hub id such as "laion/clap-htsat-unfused" in AKG_CLAP_MODEL) is also an ordinary word
    of a message, and says nothing about the server's disk; its resolved form (under the service's
    working folder) is hidden."""
    named = [("AKG_CLAP_MODEL", settings.clap_model), ("AKG_CLAP_CHECKPOINT", settings.clap_checkpoint),
             ("AKG_LABEL_SETS_DIR", settings.label_sets_dir), ("AKG_DATA_DIR", settings.data_dir),
             ("AKG_AUDIO_DIR", settings.audio_dir), ("AKG_HOME", settings.home)]
    found: dict[str, str] = {}
    for name, where in named:
        if where:
            given = os.path.expanduser(str(where))
            for form in (str(where), given, str(Path(given)), str(Path(given).resolve())):
                if (os.path.isabs(form) or form.startswith("~/")) and len(form.rstrip("/")) > 1:
                    found.setdefault(form.rstrip("/"), name)
    return [(re.compile(_STARTS + re.escape(where) + _ENDS), name)
            for where, name in sorted(found.items(), key=lambda item: -len(item[0]))]


def hide_paths(message: str, paths: list[tuple[re.Pattern, str]]) -> str:
    for where, name in paths:
        message = where.sub(name, message)
    return message


class StagedUpload:
    """An uploaded clip staged as a file for the library, and the names the caller knows for the
    temporary files: every error about them names what the caller sent, never the service's disk."""

    def __init__(self, folder: Path, shown: str):
        self.folder, self.shown, self.path = folder, shown, folder
        self._names: dict[str, str] = {}

    def stage(self, data: bytes) -> None:
        from ui.uploads import stage_upload

        self.path = stage_upload(self.shown, data, self.folder, max_bytes=_max_upload())
        self._names[str(self.path)] = self.shown

    def write(self, name: str, text: str, *, shown: str) -> Path:
        """Another part of the request as a file (a list of labels), named `shown` in errors."""
        path = self.folder / name
        path.write_text(text, encoding="utf-8")
        self._names[str(path)] = shown
        return path

    def hide(self, message: str) -> str:
        for where, shown in sorted(self._names.items(), key=lambda item: -len(item[0])):
            message = message.replace(where, shown)
        return message.replace(str(self.folder), "upload")

    def refuse_failed(self, rows: list[dict]) -> None:
        """One clip per request: a clip the library could not use (it reports the clip's error in its
        answer, beside the clips that worked) is the request's error, a 400."""
        for row in rows:
            if row.get("error"):
                raise InputError(row["error"])


@asynccontextmanager
async def staged_upload(clip: UploadFile):
    """Check and stage an uploaded clip (the explorer's rules: ui.uploads) in a temporary folder that is
    removed afterwards; any error raised inside names the caller's files as the caller sent them, never
    the temporary folder (an unforeseen one is still a 500, as Unforeseen)."""
    from ui.uploads import display_name

    data = await clip.read(_max_upload() + 1)
    with tempfile.TemporaryDirectory(prefix="akg-serve-") as tmp:
        upload = StagedUpload(Path(tmp), display_name(clip.filename or "upload"))
        try:
            upload.stage(data)
            yield upload
        except HTTPException:
            raise  # the service's own answer, about the request, not the files
        except AkgError as e:
            e.args = (upload.hide(str(e)),)
            raise
        except Exception as e:
            # the library may fail on the staged file in ways no one foresaw (a decoder's ValueError
            # naming /tmp/akg-serve-.../upload-....wav): the 500 names the caller's clip instead
            raise Unforeseen(e, upload.hide(what_failed(e))) from e


# --- who writes ------------------------------------------------------------------------------------

bearer = HTTPBearer(auto_error=False, description="a token from `akg tokens add NAME`")


def curator(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> str:
    """The name of the request's token: who is recorded in the change log. 401 without a valid one."""
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise HTTPException(401, "this is a write: send `Authorization: Bearer TOKEN` (`akg tokens add NAME` "
                                 "makes one)", headers=challenge)
    name = request.app.state.tokens.who(credentials.credentials)
    if name is None:
        raise HTTPException(401, "unknown token (`akg tokens list` shows the names of the valid ones)",
                            headers=challenge)
    return name


Curator = Annotated[str, Depends(curator)]
Limit = Annotated[int, Query(ge=1, le=1000)]


# --- the application -------------------------------------------------------------------------------

def warm_lane_size() -> int:
    """Threads of the warm lane: the cores this process may run on (at least 2)."""
    try:
        return max(2, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(2, os.cpu_count() or 2)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    state = ServiceState(settings)
    tokens = TokenStore(settings.home)
    # The warm lane: answers that are mostly computed from what the process keeps (predictions,
    # facts, neighbourhoods) run on as many threads as there are cores. More threads only made them
    # queue for the GIL: at 8 clients on 2 cores, p99 went from ~45 ms in the default 40-thread pool
    # to ~15 ms (bench/RESULTS.md, issue 14, run E). Slow work (Cypher, classification, curation)
    # keeps the default pool, so a long console query never holds up a prediction.
    lane = anyio.CapacityLimiter(warm_lane_size())

    async def warm(work):
        return await anyio.to_thread.run_sync(work, limiter=lane)

    @asynccontextmanager
    async def lifespan(app):
        import torch

        # Requests run in parallel threads; torch's intra-op threads on top of them only contend for
        # the cores (and spin): one thread per request answered 1-client predictions in 3.7 ms
        # instead of 25 ms (bench/RESULTS.md, issue 14).
        torch.set_num_threads(1)
        try:  # warm: the graph connection and the latest model, if they can be had now
            state.kg()
            state.model()
        except AkgError:
            pass  # /ready says what is missing; requests retry
        yield
        state.close()

    app = FastAPI(title="AKG knowledge service", version=__version__, lifespan=lifespan, responses=ERRORS,
                  description="The Audio-centric Knowledge Graph over HTTP: a thin layer over the Python API "
                              "(docs/api.md). Writes need `Authorization: Bearer TOKEN` (`akg tokens add NAME`).")
    app.state.service = state
    app.state.tokens = tokens
    paths = server_paths(settings)
    install_error_handlers(app, settings.debug, paths)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(BodyLimit, limit_for=lambda path: (_max_upload() + 64 * 1024 if path in UPLOADS
                                                          else MAX_BODY_BYTES))

    # --- health ------------------------------------------------------------------------------------

    @app.get("/health", tags=["health"])
    def health() -> Json:
        """The process answers (no graph needed)."""
        return {"status": "ok", "version": __version__}

    @app.get("/ready", tags=["health"])
    def ready() -> JSONResponse:
        """Ready when the graph answers and every stored model can be loaded; 503 with the reasons otherwise."""
        out: dict[str, Any] = {"graph": {"reachable": False}, "models": {}}
        problems = []
        try:
            out["graph"] = {"reachable": True, "head": state.kg().head()}
        except AkgError as e:
            problems.append(one_line(hide_paths(str(e), paths)))
            out["graph"]["error"] = problems[-1]
        rows = akg.models(settings=settings).rows()
        broken = [hide_paths(f"model {r['name']}: {r['problem']}", paths) for r in rows if r["problem"]]
        out["models"] = {"stored": len(rows), "loaded": state.loaded_models(), "broken": broken}
        problems += broken
        out.update(ready=not problems, problems=problems)
        return JSONResponse(out, 200 if not problems else 503)

    # --- the graph ---------------------------------------------------------------------------------

    @app.get("/stats", tags=["graph"])
    def stats() -> Json:
        """Entities and triples by status, split, source and relation (as `akg stats`)."""
        return state.kg().stats().to_dict()

    @app.get("/entities", tags=["graph"])
    def search(q: Annotated[str, Query(min_length=1, max_length=500, description="text in the name")],
               limit: Limit = 10) -> Json:
        """Entity names containing the text, shortest first."""
        return state.kg().search(q, limit=limit).to_dict()

    @app.get("/entities/{name:path}/facts", tags=["graph"])
    async def facts(name: Annotated[str, PathParam(max_length=500)], limit: Limit = 500) -> Json:
        """An entity's facts in both directions with provenance (status, split, sources, verdict)."""
        return await warm(lambda: state.kg().facts(name, limit=limit).to_dict())

    @app.get("/entities/{name:path}/neighbourhood", tags=["graph"])
    async def neighbourhood(name: Annotated[str, PathParam(max_length=500)],
                            depth: Annotated[int, Query(ge=1, le=2)] = 1,
                            relation: Annotated[list[str] | None, Query(max_length=50)] = None,
                            limit: Limit = 200) -> Json:
        """The facts around an entity, one or two hops, optionally of some relations only."""
        return await warm(lambda: state.kg().neighbourhood(name, depth=depth, relations=relation, limit=limit).to_dict())

    @app.post("/query", tags=["graph"])
    def query(body: QueryBody) -> Json:
        """Read-only Cypher with the gate, timeout and row limit of `akg query`: anything that would write is refused."""
        return state.kg().query(body.cypher, timeout=body.timeout, limit=body.limit, params=body.params).to_dict()

    @app.get("/labels", tags=["reasoning"])
    def labels() -> Json:
        """Every label set with its AKG coverage (as `akg labels list`)."""
        return state.kg().label_sets().to_dict()

    # --- models and predictions --------------------------------------------------------------------

    @app.get("/models", tags=["kge"])
    def models() -> Json:
        """Every stored model (as `akg models`), each with a problem if it cannot be loaded."""
        return akg.models(settings=settings).to_dict()

    @app.get("/models/{name}", tags=["kge"])
    def model_card(name: Annotated[str, PathParam(pattern=NAME_PATTERN)]) -> Json:
        """A model's card: training settings, metrics, the graph it was trained on, and whether the graph has moved since."""
        model = state.model(name)
        return {**model.card(), "stale": model.stale(state.kg())}

    @app.post("/predict", tags=["kge"])
    async def predict(body: PredictBody) -> Json:
        """The model's k best tails of (head, relation) by score, each marked known (an accepted fact of the graph) or predicted."""
        def work() -> Json:
            model = state.model(body.model)
            kg = state.kg()
            return {**model.predict(body.head, body.relation, k=body.k, kg=kg).to_dict(), "stale": model.stale(kg)}

        return await warm(work)

    @app.post("/predict/batch", tags=["kge"])
    def predict_batch(body: BatchBody) -> Json:
        """`/predict` for up to MAX_BATCH pairs; a pair that cannot be predicted carries its error."""
        model = state.model(body.model)
        kg = state.kg()
        got = model.predict_many([(p.head, p.relation) for p in body.pairs], k=body.k, kg=kg)
        return {**got.to_dict(), "stale": model.stale(kg)}

    @app.post("/classify", tags=["reasoning"])
    async def classify(clip: Annotated[UploadFile, File(description="wav, flac, ogg or mp3")],
                       labels: Annotated[str | None, Form(pattern=NAME_PATTERN, description="a label set key")] = None,
                       label_list: Annotated[str | None, Form(max_length=MAX_LABELS_BYTES,
                                                              description="labels, one a line (instead of a key)")] = None,
                       top_k: Annotated[int | None, Form(ge=1, le=100)] = None,
                       use_kge: Annotated[bool, Form()] = True, explain: Annotated[bool, Form()] = True) -> Json:
        """Zero-shot classification of one uploaded clip by CLAP refined with the graph (as `akg classify`),
        with the service's CLAP model (AKG_CLAP_MODEL). A clip that cannot be decoded is a 400."""
        from starlette.concurrency import run_in_threadpool

        async with staged_upload(clip) as upload:
            if label_list is not None:
                if labels is not None:
                    raise InputError("give labels (a label set key) or label_list, not both")
                labels = str(upload.write("labels.txt", label_list, shown="label_list"))
            chosen = labels
            out = (await run_in_threadpool(lambda: akg.classify(state.kg(), [upload.path], labels=chosen, top_k=top_k,
                                                                 use_kge=use_kge, explain=explain))).to_dict()
            upload.refuse_failed(out["clips"])
        for c in out["clips"]:  # the staged file's temporary path means nothing to the caller
            c["clip"] = upload.shown
        return json.loads(json.dumps(out, default=str))

    @app.post("/search", tags=["retrieval"])
    def search_text(body: SearchBody) -> Json:
        """Text to audio over an index (as `akg search TEXT --index N`): CLAP refined with the graph, each hit
        with its baseline rank and the variants that moved it."""
        return akg.search(state.kg(), body.text, index=body.index, k=body.k, use_kge=body.use_kge).to_dict()

    async def _with_upload(clip: UploadFile, run: Callable[[Path], dict]) -> Json:
        """Stage an uploaded clip as /classify does, run the library on its path, answer without that path;
        a clip that cannot be decoded is a 400 naming the clip as the caller sent it."""
        from starlette.concurrency import run_in_threadpool

        async with staged_upload(clip) as upload:
            out = json.loads(json.dumps(await run_in_threadpool(lambda: run(upload.path)), default=str))
            upload.refuse_failed(out.get("rows", []))
        for item in [out, *out.get("rows", [])]:  # the staged file's temporary path means nothing to the caller
            if item.get("clip") == str(upload.path):
                item["clip"] = upload.shown
        return out

    @app.post("/search/clip", tags=["retrieval"])
    async def search_clip(clip: Annotated[UploadFile, File(description="wav, flac, ogg or mp3")],
                          captions: Annotated[str, Form(min_length=1, max_length=MAX_LABELS_BYTES,
                                                        description="the captions, one a line")],
                          k: Annotated[int, Form(ge=1, le=100)] = 10, use_kge: Annotated[bool, Form()] = True) -> Json:
        """Audio to text (as `akg search --clip`): the captions that best describe the uploaded clip."""
        texts = [c.strip() for c in captions.splitlines() if c.strip()]
        return await _with_upload(clip, lambda path: akg.search(state.kg(), clip=path, captions=texts, k=k,
                                                                use_kge=use_kge).to_dict())

    @app.post("/tag", tags=["retrieval"])
    async def tag(clip: Annotated[UploadFile, File(description="wav, flac, ogg or mp3")],
                  k: Annotated[int, Form(ge=1, le=100)] = 10, use_kge: Annotated[bool, Form()] = True) -> Json:
        """Tags of the uploaded clip from every AKG entity (as `akg tag`), each with its parents and where it
        occurs. A clip that cannot be decoded is a 400."""
        return await _with_upload(clip, lambda path: akg.tag(state.kg(), [path], k=k, use_kge=use_kge).to_dict())

    # --- curation ----------------------------------------------------------------------------------

    @app.get("/curation/queue", tags=["curation"])
    def queue(status: Literal["pending", "accepted", "rejected", "any"] = "pending",
              relation: Annotated[str | None, Query(max_length=200)] = None, limit: Limit = 50) -> Json:
        """Triples waiting for a decision (as `akg curate list`)."""
        return state.kg().curate.queue(status=None if status == "any" else status, relation=relation,
                                       limit=limit).to_dict()

    @app.post("/curation/accept", tags=["curation"])
    def accept(body: DecisionBody, by: Curator) -> Json:
        """Accept triples: one change, all or nothing, recorded under the token's name."""
        return state.kg().curate.accept(*[t.t() for t in body.triples], by=by, note=body.note).to_dict()

    @app.post("/curation/reject", tags=["curation"])
    def reject(body: DecisionBody, by: Curator) -> Json:
        """Reject triples: one change, all or nothing, recorded under the token's name."""
        return state.kg().curate.reject(*[t.t() for t in body.triples], by=by, note=body.note).to_dict()

    @app.post("/curation/add", tags=["curation"])
    def add(body: AddBody, by: Curator) -> Json:
        """Add an accepted training triple (new entities are created)."""
        return state.kg().curate.add(body.head, body.relation, body.tail, by=by, note=body.note).to_dict()

    @app.post("/curation/edit", tags=["curation"])
    def edit(body: EditBody, by: Curator) -> Json:
        """Reject a triple and accept head|relation|new_tail instead."""
        return state.kg().curate.edit(body.triple.t(), new_tail=body.new_tail, by=by, note=body.note).to_dict()

    @app.get("/curation/changes", tags=["curation"])
    def changes(since: Annotated[str | None, Query(max_length=100)] = None, limit: Limit = 100) -> Json:
        """The change log, newest first (as `akg curate history`)."""
        return state.kg().curate.changes(since=since, limit=limit).to_dict()

    @app.post("/curation/revert", tags=["curation"])
    def revert(body: RevertBody, by: Curator) -> Json:
        """Undo a change, as a new change recorded under the token's name."""
        return state.kg().curate.revert(body.change_id, by=by, note=body.note).to_dict()

    @app.get("/versions", tags=["curation"])
    def versions() -> Json:
        """The graph's versions, oldest first (as `akg versions`)."""
        return state.kg().versions().to_dict()

    @app.get("/diff", tags=["curation"])
    def diff(old: Annotated[str, Query(min_length=1, max_length=100)],
             new: Annotated[str, Query(min_length=1, max_length=100)] = "current") -> Json:
        """Triples accepted in `new` but not `old` and the reverse (as `akg diff`); versions by prefix."""
        return state.kg().diff(old, new).to_dict()

    return app


def app_from_env() -> FastAPI:
    """The factory uvicorn calls in each worker (`akg serve --workers N`)."""
    return create_app(Settings.from_env())
