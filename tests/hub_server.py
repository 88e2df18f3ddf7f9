"""A stand-in for the Hugging Face Hub's file API on 127.0.0.1, for offline tests.

It speaks just enough for huggingface_hub's ``model_info``, ``snapshot_download`` and
``hf_hub_download`` (read from huggingface_hub 2.x's source):

* ``GET /api/models/{repo}[/revision/{rev}]`` -> ``{"id", "sha", "siblings": [...]}``
  (with ``size``/``blobId``/``lfs`` per sibling when ``?blobs=True``);
* ``GET /api/models/{repo}/tree/{rev}`` -> the recursive file list;
* ``HEAD``/``GET /{repo}/resolve/{rev}/{path}`` -> the file, with ``X-Repo-Commit``,
  ``ETag`` (plus ``X-Linked-Etag``/``X-Linked-Size`` for LFS files) and ``Content-Length``;
* errors the way the Hub signals them: 404 + ``X-Error-Code: RepoNotFound`` /
  ``RevisionNotFound`` / ``EntryNotFound``, and 401 + ``X-Error-Message: Invalid
  credentials in Authorization header`` for a wrong token.

Every request is recorded (method and path, never headers) so tests can assert what
was and was not downloaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qs, unquote, urlsplit

REPO = Path(__file__).resolve().parent.parent

_LFS_SUFFIXES = (".safetensors", ".bin", ".onnx", ".h5", ".msgpack", ".model", ".gguf")


@dataclass
class FakeRepo:
    """Files of one model repo at one commit.

    ``unavailable`` files are listed but answer 404 on download (a broken upload);
    ``private`` repos need the server's valid token.
    """

    files: dict[str, bytes]
    private: bool = False
    unavailable: set[str] = field(default_factory=set)

    @property
    def sha(self) -> str:
        digest = hashlib.sha1()
        for name in sorted(self.files):
            digest.update(name.encode() + b"\0" + hashlib.sha1(self.files[name]).digest())
        return digest.hexdigest()

    def entry(self, path: str, blobs: bool) -> dict[str, object]:
        data = self.files[path]
        entry: dict[str, object] = {"rfilename": path}
        if blobs:
            entry.update(size=len(data), blobId=hashlib.sha1(data).hexdigest())
            if path.endswith(_LFS_SUFFIXES):
                entry["lfs"] = {
                    "size": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "pointerSize": 134,
                }
        return entry


class HubServer:
    """Threaded HTTP server; use as a context manager, point HF_ENDPOINT at ``url``."""

    def __init__(self, valid_token: str | None = None) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.valid_token = valid_token
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def add_repo(
        self,
        repo_id: str,
        files: dict[str, bytes],
        *,
        private: bool = False,
        unavailable: set[str] | None = None,
    ) -> FakeRepo:
        repo = FakeRepo(dict(files), private=private, unavailable=set(unavailable or ()))
        self.repos[repo_id] = repo
        return repo

    def add_repo_from_dir(
        self,
        repo_id: str,
        directory: Path,
        *,
        extra_files: dict[str, bytes] | None = None,
        private: bool = False,
        unavailable: set[str] | None = None,
    ) -> FakeRepo:
        """A repo holding every file of ``directory`` (a ``save_pretrained`` output) plus ``extra_files``."""
        files = {
            p.relative_to(directory).as_posix(): p.read_bytes() for p in directory.rglob("*") if p.is_file()
        }
        return self.add_repo(
            repo_id, {**files, **(extra_files or {})}, private=private, unavailable=unavailable
        )

    def downloaded(self) -> list[str]:
        """Paths of files fetched with GET ``/resolve/`` (in request order)."""
        with self._lock:
            return [
                path.split("/resolve/", 1)[1].split("/", 1)[1]
                for method, path in self.requests
                if method == "GET" and "/resolve/" in path
            ]

    def record(self, method: str, path: str) -> None:
        with self._lock:
            self.requests.append((method, path))

    def __enter__(self) -> HubServer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler_for(hub: HubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            """Silence the default stderr access log."""

        def do_GET(self) -> None:
            self._dispatch(send_body=True)

        def do_HEAD(self) -> None:
            self._dispatch(send_body=False)

        # ------------------------------------------------------------------ plumbing
        def _reply(
            self,
            status: int,
            body: bytes = b"",
            headers: dict[str, str] | None = None,
            send_body: bool = True,
        ) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if send_body and body:
                self.wfile.write(body)

        def _json(self, value: object, send_body: bool) -> None:
            self._reply(200, json.dumps(value).encode(), {"Content-Type": "application/json"}, send_body)

        def _error(self, status: int, code: str | None, message: str, send_body: bool, **extra: str) -> None:
            headers = {"Content-Type": "application/json", **extra}
            if code:
                headers["X-Error-Code"] = code
            headers["X-Error-Message"] = message
            self._reply(status, json.dumps({"error": message}).encode(), headers, send_body)

        def _authorised(self, repo: FakeRepo, send_body: bool) -> bool:
            auth = self.headers.get("authorization")
            if auth is not None and auth != f"Bearer {hub.valid_token}":
                self._error(401, None, "Invalid credentials in Authorization header", send_body)
                return False
            if repo.private and auth is None:
                self._error(401, "RepoNotFound", "Repository not found", send_body)
                return False
            return True

        def _repo(self, repo_id: str, send_body: bool) -> FakeRepo | None:
            repo = hub.repos.get(repo_id)
            if repo is None:
                self._error(404, "RepoNotFound", "Repository not found", send_body)
                return None
            return repo if self._authorised(repo, send_body) else None

        def _revision_ok(self, repo: FakeRepo, revision: str, send_body: bool) -> bool:
            if revision in ("main", repo.sha):
                return True
            self._error(404, "RevisionNotFound", "Invalid rev id", send_body)
            return False

        # ------------------------------------------------------------------ routes
        def _dispatch(self, send_body: bool) -> None:
            parts = urlsplit(self.path)
            path = unquote(parts.path)
            query = parse_qs(parts.query)
            hub.record(self.command, path)
            if path.startswith("/api/models/"):
                self._api(path.removeprefix("/api/models/"), query, send_body)
            elif "/resolve/" in path:
                repo_id, rest = path.lstrip("/").split("/resolve/", 1)
                revision, _, filename = rest.partition("/")
                self._resolve(repo_id, revision, filename, send_body)
            else:
                self._error(404, None, "Not found", send_body)

        def _api(self, rest: str, query: dict[str, list[str]], send_body: bool) -> None:
            if "/tree/" in rest:
                repo_id, revision = rest.split("/tree/", 1)
                revision = revision.split("/", 1)[0]
                repo = self._repo(repo_id, send_body)
                if repo is None or not self._revision_ok(repo, revision, send_body):
                    return
                tree = []
                for name in sorted(repo.files):
                    entry = repo.entry(name, blobs=True)
                    item = {"type": "file", "path": name, "size": entry["size"], "oid": entry["blobId"]}
                    lfs = entry.get("lfs")
                    if isinstance(lfs, dict):  # the tree endpoint calls the LFS sha256 "oid"
                        item["lfs"] = {
                            "oid": lfs["sha256"],
                            "size": lfs["size"],
                            "pointerSize": lfs["pointerSize"],
                        }
                    tree.append(item)
                self._json(tree, send_body)
                return
            repo_id, _, revision = rest.partition("/revision/")
            repo = self._repo(repo_id, send_body)
            if repo is None or not self._revision_ok(repo, revision or "main", send_body):
                return
            blobs = query.get("blobs", ["false"])[0].lower() == "true"
            self._json(
                {
                    "id": repo_id,
                    "modelId": repo_id,
                    "sha": repo.sha,
                    "private": repo.private,
                    "siblings": [repo.entry(name, blobs) for name in sorted(repo.files)],
                },
                send_body,
            )

        def _resolve(self, repo_id: str, revision: str, filename: str, send_body: bool) -> None:
            repo = self._repo(repo_id, send_body)
            if repo is None or not self._revision_ok(repo, revision, send_body):
                return
            if filename not in repo.files or filename in repo.unavailable:
                self._error(404, "EntryNotFound", "Entry not found", send_body, **{"X-Repo-Commit": repo.sha})
                return
            data = repo.files[filename]
            etag = hashlib.sha256(data).hexdigest()
            headers = {
                "Content-Type": "application/octet-stream",
                "X-Repo-Commit": repo.sha,
                "ETag": f'"{etag}"',
                "Accept-Ranges": "bytes",
            }
            if filename.endswith(_LFS_SUFFIXES):
                headers["X-Linked-Etag"] = f'"{etag}"'
                headers["X-Linked-Size"] = str(len(data))
            self._reply(200, data, headers, send_body)

    return Handler


def download(
    tmp_path: Path, name: str, *, endpoint: str, revision: str | None = None, **env: str
) -> tuple[subprocess.CompletedProcess[str], Path, float]:
    """Run ``python -m workflow_scripts.download_model``; returns (result, out_dir, seconds)."""
    clean = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HF_", "HUGGING_FACE")) and not key.lower().endswith("_proxy")
    }
    clean.update(HF_ENDPOINT=endpoint, HF_HOME=str(tmp_path / "hf_home"), PYTHONPATH=str(REPO), **env)
    out = tmp_path / "models" / name.replace("/", "--")
    command = [
        sys.executable,
        "-m",
        "workflow_scripts.download_model",
        "--name-or-path",
        name,
        "--out-dir",
        str(out),
    ]
    if revision:
        command += ["--revision", revision]
    start = time.monotonic()
    result = subprocess.run(command, cwd=REPO, env=clean, capture_output=True, text=True, timeout=120)
    return result, out, time.monotonic() - start
