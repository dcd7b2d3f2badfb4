"""The frozen ``gate`` split the promotion gate compares every model on (never ``test``).

The first time the gate runs for a registered model, the ``gate`` rows of the validated manifest are
copied — text, language, label, translation group and the image and audio *bytes* — into
``frozen_gate.parquet``, logged as an artifact of that MLflow run, and the registered model gets
tags naming it (``gate.frozen_set_uri``) and its content hash (``gate.frozen_set_hash``). Later
comparisons load that copy, check its hash, and use it even if ``data/`` has since been regenerated
(and say so), so challenger and champion are always scored on the same posts. The ``test`` split is
never opened here: it is for the evaluate stage's report only.
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


class NoGateRows(BabelfuseError):
    """The manifest has no ``gate`` split: there is nothing the gate may score on."""


SPLIT = "gate"  # the only split the gate reads
TAG_HASH = "gate.frozen_set_hash"
TAG_URI = "gate.frozen_set_uri"
TAG_ROWS = "gate.frozen_set_rows"
FILE_NAME = "frozen_gate.parquet"
COLUMNS: tuple[str, ...] = ("sample_id", "lang", "label", "group", "text", "image", "audio")


@dataclass
class FrozenSet:
    frame: pd.DataFrame  # COLUMNS; image/audio are bytes or None
    hash: str
    uri: str
    created: bool  # frozen by this call
    current_hash: str | None  # hash of the manifest's gate rows now (None: no manifest given)
    note: str = ""

    @property
    def changed(self) -> bool:
        return self.current_hash is not None and self.current_hash != self.hash

    def describe(self) -> dict:
        return {
            "split": SPLIT,
            "hash": self.hash,
            "rows": len(self.frame),
            "uri": self.uri,
            "frozen_now": self.created,
            "current_hash": self.current_hash,
            "current_differs": self.changed,
            "note": self.note,
        }


def gate_rows(manifest_path: Path | str) -> pd.DataFrame:
    """The manifest's gate rows with their media read into bytes (paths resolved inside the data root).

    ``group`` is the row's ``template_id`` (its translation group) when the manifest has one, else a
    group of its own.
    """
    manifest = load_manifest(manifest_path)
    frame = manifest.frame
    rows = frame[frame["split"] == SPLIT].sort_values("sample_id").reset_index(drop=True)
    if rows.empty:
        raise NoGateRows(
            f"{manifest_path} has no '{SPLIT}' rows: the promotion gate scores models only on the "
            f"'{SPLIT}' split (never on test); add rows with split={SPLIT} to promote automatically"
        )
    if "template_id" in rows and rows["template_id"].notna().all():
        groups = rows["template_id"].astype("int64").tolist()
    else:
        groups = [-(i + 1) for i in range(len(rows))]

    def read(relative) -> bytes | None:
        path = manifest.media_path(relative)
        if path is None:
            return None
        if not path.is_file():
            raise BabelfuseError(f"gate media file missing: {path} (listed in {manifest_path})")
        return path.read_bytes()

    return pd.DataFrame(
        {
            "sample_id": rows["sample_id"].astype(str),
            "lang": rows["lang"].astype(str),
            "label": rows["label"].astype(str),
            "group": groups,
            "text": [None if pd.isna(t) else str(t) for t in rows["text"]],
            "image": [read(p) for p in rows["image_path"]],
            "audio": [read(p) for p in rows["audio_path"]],
        },
        columns=list(COLUMNS),
    )


def content_hash(frame: pd.DataFrame) -> str:
    """sha256 (16 hex) over every row's ids, text, label and media bytes, in sample_id order."""
    digest = hashlib.sha256()
    for row in frame.sort_values("sample_id").itertuples(index=False):
        for value in (row.sample_id, row.lang, row.label, row.group, row.text, row.image, row.audio):
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
    import mlflow  # heavy (~1 s): imported only when something is logged or loaded

    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp)
        frame = pd.read_parquet(local)
    frame = frame.astype(object).where(frame.notna(), None)
    got = content_hash(frame)
    if got != expected_hash:
        raise BabelfuseError(
            f"frozen gate set {uri} has hash {got}, but the registry recorded {expected_hash}"
        )
    return frame


def _freeze(client, model_name: str, frame: pd.DataFrame, digest: str) -> str:
    """Log the frame as an artifact of the active run and tag the registered model with it."""
    import mlflow  # heavy (~1 s): imported only when something is logged or loaded

    run = mlflow.active_run()
    if run is None:
        raise BabelfuseError("freezing the gate set needs an active MLflow run (internal error)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / FILE_NAME
        frame.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), "gate")
    uri = f"runs:/{run.info.run_id}/gate/{FILE_NAME}"
    client.set_registered_model_tag(model_name, TAG_URI, uri)
    client.set_registered_model_tag(model_name, TAG_HASH, digest)
    client.set_registered_model_tag(model_name, TAG_ROWS, str(len(frame)))
    log.info("froze the gate set: %d rows, hash %s -> %s", len(frame), digest, uri)
    return uri


def ensure_frozen(client, model_name: str, manifest_path: Path | str | None) -> FrozenSet:
    """The registered model's frozen gate set; frozen now from the manifest if it has none yet."""
    current = gate_rows(manifest_path) if manifest_path is not None and Path(manifest_path).exists() else None
    current_hash = content_hash(current) if current is not None else None
    tags = client.get_registered_model(model_name).tags
    note = ""
    if TAG_HASH in tags and TAG_URI in tags:
        try:
            frame = _load(tags[TAG_URI], tags[TAG_HASH])
            if current_hash is not None and current_hash != tags[TAG_HASH]:
                note = (
                    f"the manifest's gate set (hash {current_hash}) differs from the frozen one "
                    f"({tags[TAG_HASH]}): both models were scored on the frozen one"
                )
                log.warning("%s", note)
            return FrozenSet(frame, tags[TAG_HASH], tags[TAG_URI], False, current_hash, note)
        except Exception as err:  # noqa: BLE001 - whatever failed (missing artifact, bad hash): re-freeze, say so
            if current is None:
                raise BabelfuseError(f"cannot load the frozen gate set {tags[TAG_URI]}: {err}") from None
            note = f"the frozen gate set {tags[TAG_URI]} could not be loaded ({err}); froze the current one instead"
            log.warning("%s", note)
    if current is None:
        raise BabelfuseError(
            f"registered model {model_name} has no frozen gate set yet and no manifest was given to freeze one "
            "(pass --manifest data/validated/manifest.parquet)"
        )
    uri = _freeze(client, model_name, current, current_hash)
    return FrozenSet(current, current_hash, uri, True, current_hash, note)
