"""Output folders know what made them: run.json, refusal of other runs, --overwrite, cleanup after failure."""

import json
from pathlib import Path

from dictlab.outputs import RunIdentity, claim_output, read_identity
from reliability_helpers import SMALL_TRAIN, invoke

from .conftest import Folders


def test_run_json_records_the_command_settings_and_store_fingerprint(folders: Folders) -> None:
    identity = read_identity(folders.run)
    assert identity.command == "train" and identity.config["k"] == 4 and identity.config["module"] == "model.layers.1"
    assert identity.inputs["store"].startswith("sha256:")
    assert "out" not in identity.config and "device" not in identity.config


def test_overwrite_replaces_a_run_made_with_other_settings(folders: Folders, tmp_path: Path) -> None:
    run = folders.copy("run", tmp_path)
    (run / "in_model.json").write_text("{}")  # a file of the old run that the new one does not write
    result = invoke(
        "train", "--store", folders.store, "--out", run, "--steps", "30", "--k", "8", *SMALL_TRAIN, "--overwrite"
    )
    assert result.exit_code == 0, result.output
    assert read_identity(run).config["k"] == 8
    assert json.loads((run / "cfg.json").read_text())["dictionary"]["k"] == 8
    assert not (run / "in_model.json").exists()


def test_import_saelens_onto_a_run_needs_overwrite_and_then_replaces_it_whole(folders: Folders, tmp_path: Path) -> None:
    run = folders.copy("run", tmp_path)
    assert invoke("import-saelens", folders.saelens, run).exit_code == 1
    assert (run / "metrics.json").exists()
    result = invoke("import-saelens", folders.saelens, run, "--overwrite")
    assert result.exit_code == 0, result.output
    assert read_identity(run).command == "import-saelens"
    assert not (run / "metrics.json").exists() and not (run / "train").exists()
    again = invoke("import-saelens", folders.saelens, run)  # the same import again is allowed
    assert again.exit_code == 0, again.output


def test_overwrite_never_deletes_a_folder_dictlab_did_not_write(folders: Folders, tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "data.csv").write_text("1,2")
    result = invoke("train", "--store", folders.store, "--out", mine, "--steps", "30", *SMALL_TRAIN, "--overwrite")
    assert result.exit_code == 1 and (mine / "data.csv").read_text() == "1,2"


def test_a_failed_run_removes_the_folder_it_created_and_keeps_one_it_resumes(tmp_path: Path) -> None:
    identity = RunIdentity(command="test", config={"a": 1})
    out = tmp_path / "new" / "deeper"
    try:
        with claim_output(out, identity):
            (out / "half.txt").write_text("half")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert not out.exists()
    with claim_output(out, identity):
        (out / "done.txt").write_text("done")
    try:
        with claim_output(out, identity):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert (out / "done.txt").exists()  # a folder that existed before the failing run is left as it was
