"""The frozen test set the promotion gate compares every model on.

The first time the gate runs for a registered model, the ``test`` rows of the validated manifest are
copied — text, language, label and the image and audio *bytes* — into ``frozen_test.parquet``,
logged as an artifact of that MLflow run, and the registered model gets tags naming it
(``gate.frozen_test_uri``) and its content hash (``gate.frozen_test_hash``). Later comparisons load
that copy, check its hash, and use it even if ``data/`` has since been regenerated (and say so), so
challenger and champion are always scored on the same posts.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from babelfuse.data.manifest import load_manifest
from babelfuse.errors import BabelfuseError

log = logging.getLogger("babelfuse.serving.frozen")

TAG_HASH = "gate.frozen_test_hash"
TAG_URI = "gate.frozen_test_uri"
TAG_ROWS = "gate.frozen_test_rows"
FILE_NAME = "frozen_test.parquet"
COLUMNS: tuple[str, ...] = ("sample_id", "lang", "label", "text", "image", "audio")


@dataclass
class FrozenTest:
    frame: pd.DataFrame  # COLUMNS; image/audio are bytes or None
    hash: str
    uri: str
    created: bool  # frozen by this call
    current_hash: str | None  # hash of the manifest's test rows now (None: no manifest given)
    note: str = ""

    @property
    def changed(self) -> bool:
        return self.current_hash is not None and self.current_hash != self.hash

    def describe(self) -> dict:
        return {
            "hash": self.hash,
            "rows": len(self.frame),
            "uri": self.uri,
            "frozen_now": self.created,
            "current_hash": self.current_hash,
            "current_differs": self.changed,
            "note": self.note,
        }


def test_rows(manifest_path: Path | str) -> pd.DataFrame:
    """The manifest's test rows with their media read into bytes (paths resolved inside the data root)."""
    manifest = load_manifest(manifest_path)
    frame = manifest.frame
    test = frame[frame["split"] == "test"].sort_values("sample_id").reset_index(drop=True)
    if test.empty:
        raise BabelfuseError(f"{manifest_path} has no test rows: nothing to compare models on")

    def read(relative) -> bytes | None:
        path = manifest.media_path(relative)
        if path is None:
            return None
        if not path.is_file():
            raise BabelfuseError(f"test media file missing: {path} (listed in {manifest_path})")
        return path.read_bytes()

    return pd.DataFrame(
        {
            "sample_id": test["sample_id"].astype(str),
            "lang": test["lang"].astype(str),
            "label": test["label"].astype(str),
            "text": [None if pd.isna(t) else str(t) for t in test["text"]],
            "image": [read(p) for p in test["image_path"]],
            "audio": [read(p) for p in test["audio_path"]],
        },
        columns=list(COLUMNS),
    )


def content_hash(frame: pd.DataFrame) -> str:
    """sha256 (16 hex) over every row's ids, text, label and media bytes, in sample_id order."""
    digest = hashlib.sha256()
    for row in frame.sort_values("sample_id").itertuples(index=False):
        for value in (row.sample_id, row.lang, row.label, row.text, row.image, row.audio):
            if value is None or (isinstance(value, float) and pd.isna(value)):
                part = b"\x00null"
            elif isinstance(value, bytes):
                part = hashlib.sha256(value).digest()
            else:
                part = str(value).encode()
            digest.update(len(part).to_bytes(8, "little") + part)
    return digest.hexdigest()[:16]


def as_request(frame: pd.DataFrame) -> pd.DataFrame:
    """Pyfunc input (text, lang, image, audio) with media as base64 text, as a remote caller sends it."""

    def b64(value) -> str | None:
        return base64.b64encode(value).decode() if isinstance(value, bytes) else None

    return pd.DataFrame(
        {
            "text": frame["text"].tolist(),
            "lang": frame["lang"].tolist(),
            "image": [b64(v) for v in frame["image"]],
            "audio": [b64(v) for v in frame["audio"]],
        }
    )


def _load(uri: str, expected_hash: str) -> pd.DataFrame:
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp)
        frame = pd.read_parquet(local)
    frame = frame.astype(object).where(frame.notna(), None)
    got = content_hash(frame)
    if got != expected_hash:
        raise BabelfuseError(
            f"frozen test set {uri} has hash {got}, but the registry recorded {expected_hash}"
        )
    return frame


def _freeze(client, model_name: str, frame: pd.DataFrame, digest: str) -> str:
    """Log the frame as an artifact of the active run and tag the registered model with it."""
    import mlflow

    run = mlflow.active_run()
    if run is None:
        raise BabelfuseError("freezing the test set needs an active MLflow run (internal error)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / FILE_NAME
        frame.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), "gate")
    uri = f"runs:/{run.info.run_id}/gate/{FILE_NAME}"
    client.set_registered_model_tag(model_name, TAG_URI, uri)
    client.set_registered_model_tag(model_name, TAG_HASH, digest)
    client.set_registered_model_tag(model_name, TAG_ROWS, str(len(frame)))
    log.info("froze the test set: %d rows, hash %s -> %s", len(frame), digest, uri)
    return uri


def ensure_frozen(client, model_name: str, manifest_path: Path | str | None) -> FrozenTest:
    """The registered model's frozen test set; frozen now from the manifest if it has none yet."""
    current = test_rows(manifest_path) if manifest_path is not None and Path(manifest_path).exists() else None
    current_hash = content_hash(current) if current is not None else None
    tags = client.get_registered_model(model_name).tags
    note = ""
    if TAG_HASH in tags and TAG_URI in tags:
        try:
            frame = _load(tags[TAG_URI], tags[TAG_HASH])
            if current_hash is not None and current_hash != tags[TAG_HASH]:
                note = (
                    f"the manifest's test set (hash {current_hash}) differs from the frozen one "
                    f"({tags[TAG_HASH]}): both models were scored on the frozen one"
                )
                log.warning("%s", note)
            return FrozenTest(frame, tags[TAG_HASH], tags[TAG_URI], False, current_hash, note)
        except Exception as err:  # noqa: BLE001 - whatever failed (missing artifact, bad hash): re-freeze, say so
            if current is None:
                raise BabelfuseError(f"cannot load the frozen test set {tags[TAG_URI]}: {err}") from None
            note = f"the frozen test set {tags[TAG_URI]} could not be loaded ({err}); froze the current one instead"
            log.warning("%s", note)
    if current is None:
        raise BabelfuseError(
            f"registered model {model_name} has no frozen test set yet and no manifest was given to freeze one "
            "(pass --manifest data/validated/manifest.parquet)"
        )
    uri = _freeze(client, model_name, current, current_hash)
    return FrozenTest(current, current_hash, uri, True, current_hash, note)
