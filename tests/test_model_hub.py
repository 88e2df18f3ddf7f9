"""download_model against a local Hub (tests/hub_server.py), run as the real CLI.

huggingface_hub reads HF_ENDPOINT, HF_HOME and HF_HUB_OFFLINE when it is imported, so
every download runs in a subprocess with its own environment: the test process itself
never imports huggingface_hub with these settings, and the CLI is exercised as the
Snakemake rule runs it.
"""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hub_server import HubServer, download
from safetensors.torch import load_file, save_file
from tiny_models import make_tiny_t5

from workflow_scripts.models.verification import VerificationError, verify_model_dir

REPO = Path(__file__).resolve().parent.parent
GOOD_TOKEN = "hf_GoodTokenForTheFakeHub0123456789"
BAD_TOKEN = "hf_BadTokenThatMustNeverBeWritten98765"
EXTRAS = {
    "onnx/model.onnx": b"onnx-bytes",
    "tf_model.h5": b"tf-bytes",
    "flax_model.msgpack": b"flax-bytes",
    "tokenizer.json": b"{}",
    "spiece.model": b"sentencepiece",
    "README.md": b"# tiny",
}


@pytest.fixture(scope="module")
def tiny_t5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_t5(tmp_path_factory.mktemp("t5") / "model")


@pytest.fixture(scope="module")
def hub(tiny_t5: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubServer]:
    partial = tmp_path_factory.mktemp("partial")
    state = load_file(tiny_t5 / "model.safetensors")
    save_file({k: v for k, v in state.items() if "decoder.block.1." not in k}, partial / "model.safetensors")
    (partial / "config.json").write_bytes((tiny_t5 / "config.json").read_bytes())
    with HubServer(valid_token=GOOD_TOKEN) as server:
        server.add_repo_from_dir("acme/tiny-t5", tiny_t5, extra_files=EXTRAS)
        server.add_repo_from_dir("acme/private-t5", tiny_t5, private=True)
        server.add_repo_from_dir("acme/partial-t5", partial)
        server.add_repo_from_dir("acme/broken-upload", tiny_t5, unavailable={"model.safetensors"})
        server.add_repo("acme/config-only", {"config.json": (tiny_t5 / "config.json").read_bytes()})
        server.add_repo(
            "acme/onnx-only",
            {
                "config.json": (tiny_t5 / "config.json").read_bytes(),
                "onnx/model.onnx": b"x",
                "tokenizer.json": b"{}",
            },
        )
        yield server


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def assert_never_written(token: str, result: subprocess.CompletedProcess[str], *roots: Path) -> None:
    assert token not in result.stdout and token not in result.stderr
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                assert token.encode() not in path.read_bytes(), f"token written to {path}"


def test_good_repo_fetches_only_config_and_weights(hub: HubServer, tmp_path: Path) -> None:
    repo = hub.repos["acme/tiny-t5"]
    before = len(hub.downloaded())
    result, out, _ = download(tmp_path, "acme/tiny-t5", endpoint=hub.url)
    assert result.returncode == 0, result.stderr
    assert sorted(hub.downloaded()[before:]) == ["config.json", "model.safetensors"]
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "manifest.json", "model.safetensors"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source"] == "hub" and manifest["resolved_revision"] == repo.sha
    assert manifest["name_or_path"] == "acme/tiny-t5" and manifest["requested_revision"] is None
    record = verify_model_dir(out)
    assert record["resolved_revision"] == repo.sha and record["checks"]["keys"] == "passed"


def test_pinned_revision_and_unknown_revision(hub: HubServer, tmp_path: Path) -> None:
    sha = hub.repos["acme/tiny-t5"].sha
    result, out, _ = download(tmp_path, "acme/tiny-t5", endpoint=hub.url, revision=sha)
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "manifest.json").read_text())["requested_revision"] == sha
    result, _, _ = download(tmp_path / "x", "acme/tiny-t5", endpoint=hub.url, revision="no-such-branch")
    assert result.returncode == 1 and "Revision 'no-such-branch' does not exist" in result.stderr


def test_cached_snapshot_is_used_offline_and_when_unreachable(hub: HubServer, tmp_path: Path) -> None:
    result, _, _ = download(tmp_path, "acme/tiny-t5", endpoint=hub.url)
    assert result.returncode == 0, result.stderr
    sha = hub.repos["acme/tiny-t5"].sha
    for env in ({"HF_HUB_OFFLINE": "1"}, {}):
        endpoint = hub.url if env else f"http://127.0.0.1:{free_port()}"
        requests = len(hub.requests)
        result, out, _ = download(tmp_path, "acme/tiny-t5", endpoint=endpoint, **env)
        assert result.returncode == 0, result.stderr
        assert json.loads((out / "manifest.json").read_text())["resolved_revision"] == sha
        assert len(hub.requests) == requests, "offline use must not contact the Hub"


def test_repo_not_found(hub: HubServer, tmp_path: Path) -> None:
    result, out, _ = download(tmp_path, "acme/no-such-model", endpoint=hub.url)
    assert result.returncode == 1 and not out.exists()
    assert "'acme/no-such-model' was not found" in result.stderr


@pytest.mark.parametrize(
    ("repo", "message"),
    [("acme/broken-upload", "weights file missing"), ("acme/config-only", "has no weights file")],
)
def test_weights_file_missing(hub: HubServer, tmp_path: Path, repo: str, message: str) -> None:
    result, out, _ = download(tmp_path, repo, endpoint=hub.url)
    assert result.returncode == 1 and message in result.stderr and not out.exists()


def test_onnx_only_repo_is_refused_before_downloading(hub: HubServer, tmp_path: Path) -> None:
    before = len(hub.downloaded())
    result, out, _ = download(tmp_path, "acme/onnx-only", endpoint=hub.url)
    assert result.returncode == 1 and "only ONNX" in result.stderr and not out.exists()
    assert hub.downloaded()[before:] == []


def test_partial_checkpoint_downloads_but_fails_verification(hub: HubServer, tmp_path: Path) -> None:
    result, out, _ = download(tmp_path, "acme/partial-t5", endpoint=hub.url)
    assert result.returncode == 0, result.stderr
    with pytest.raises(VerificationError) as caught:
        verify_model_dir(out)
    assert caught.value.check == "keys" and "decoder.block.1." in str(caught.value)


def test_bad_token_gets_401_and_is_never_written(hub: HubServer, tmp_path: Path) -> None:
    result, out, _ = download(tmp_path, "acme/tiny-t5", endpoint=hub.url, HF_TOKEN=BAD_TOKEN)
    assert result.returncode == 1 and not out.exists()
    assert "HTTP 401" in result.stderr and "HF_TOKEN" in result.stderr
    assert_never_written(BAD_TOKEN, result, tmp_path)


def test_private_repo_with_valid_token_and_token_never_written(hub: HubServer, tmp_path: Path) -> None:
    result, _, _ = download(tmp_path, "acme/private-t5", endpoint=hub.url)
    assert result.returncode == 1 and "was not found" in result.stderr  # private: no token, no access
    result, out, _ = download(tmp_path, "acme/private-t5", endpoint=hub.url, HF_TOKEN=GOOD_TOKEN)
    assert result.returncode == 0, result.stderr
    assert (out / "model.safetensors").is_file()
    assert_never_written(GOOD_TOKEN, result, tmp_path)


def test_offline_with_nothing_cached_fails_fast(tmp_path: Path) -> None:
    result, out, seconds = download(
        tmp_path, "acme/tiny-t5", endpoint="http://127.0.0.1:9", HF_HUB_OFFLINE="1"
    )
    assert result.returncode == 1 and seconds < 5 and not out.exists()
    message = result.stderr
    for advice in ("HF_ENDPOINT", "HTTPS_PROXY", "fill the cache", "local directory", "HF_HUB_OFFLINE"):
        assert advice in message
    assert "Traceback" not in message


def test_unreachable_hub_with_nothing_cached_fails_fast(tmp_path: Path) -> None:
    result, out, seconds = download(tmp_path, "acme/tiny-t5", endpoint=f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1 and seconds < 5 and not out.exists()
    assert "is not reachable" in result.stderr and "ConnectError" in result.stderr


def test_proxy_settings_are_honoured(hub: HubServer, tmp_path: Path) -> None:
    """A dead HTTP_PROXY is used (and reported) rather than bypassed."""
    requests = len(hub.requests)
    proxy = f"http://127.0.0.1:{free_port()}"
    result, _, seconds = download(
        tmp_path, "acme/tiny-t5", endpoint=hub.url, HTTP_PROXY=proxy, HTTPS_PROXY=proxy
    )
    assert result.returncode == 1 and seconds < 5
    assert "HTTPS_PROXY/HTTP_PROXY" in result.stderr
    assert len(hub.requests) == requests
