"""The end-to-end model: raw posts (text, language, image, audio) in; label and probabilities out.

:class:`Predictor` does the work in plain Python (decode -> encode with the training encoders ->
standardise with the training scalers -> Keras model -> temperature scaling); :class:`BabelfuseModel`
is the thin MLflow ``PythonModel`` around it, logged as code (``model_code.py``), so nothing is
pickled. ``predict`` never lets an exception out except an ``MlflowException`` with a clear message:
``INVALID_PARAMETER_VALUE`` (HTTP 400) for bad input, ``INTERNAL_ERROR`` (HTTP 500, details only in
the server log) for anything else, and never a stack trace in the response.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INTERNAL_ERROR, INVALID_PARAMETER_VALUE

from babelfuse import explain as shapley
from babelfuse.errors import BabelfuseError, check_finite, load_keras, read_json
from babelfuse.features.base import Encoder
from babelfuse.features.registry import get_encoder  # light: an encoder's module loads on first use
from babelfuse.labels import LABELS
from babelfuse.paths import MODALITIES
from babelfuse.probabilities import apply_temperature
from babelfuse.serving import explain, inputs, media_pool, memory, traffic
from babelfuse.serving.inputs import Limits, Post, PostError, RequestError
from babelfuse.serving.media_pool import MEDIA, Decoded, MediaContext, MediaPool

log = logging.getLogger("babelfuse.serving")

MEDIA_ROOT_ENV = "BABELFUSE_MEDIA_ROOT"
SERVER_APP = "mlflow.pyfunc.scoring_server.app"  # the module `mlflow models serve` starts uvicorn on
PROB_COLUMNS: tuple[str, ...] = tuple(f"prob_{label}" for label in LABELS)
LANGUAGE_COLUMNS: tuple[str, ...] = ("lang_detected", "lang_seen_in_training")
OUTPUT_COLUMNS: tuple[str, ...] = ("label", *PROB_COLUMNS, *LANGUAGE_COLUMNS, "error")
_ENCODERS: dict[str, Encoder] = {}  # per process: encoders are deterministic and stateless, so shared


def get_encoder_cached(modality: str, params: dict[str, Any]) -> Encoder:
    """``features.registry.get_encoder`` once per (modality, params) per process (USE takes seconds)."""
    key = json.dumps([modality, params], sort_keys=True, default=str)
    if key not in _ENCODERS:
        _ENCODERS[key] = get_encoder(modality, str(params["encoder"]), params)
    return _ENCODERS[key]


@dataclass
class Predictor:
    """Everything a prediction needs, loaded once."""

    model: Any  # keras.Model
    encoders: dict[str, Encoder]
    scalers: dict[str, dict[str, np.ndarray]]
    temperature: float
    languages: inputs.Languages
    limits: Limits
    features: dict[str, dict[str, Any]]
    media_root: str | None = None
    config: dict[str, Any] | None = (
        None  # the serving.json it was built from (the media pool's workers need it)
    )
    pool: MediaPool | None = None  # :meth:`start_pool`; None: all work in this process

    @classmethod
    def from_files(cls, model: Path | str, scalers: Path | str, temperature: Path | str, config: Path | str):
        """Load the Keras model (safe_mode), scalers, temperature and serving config; build the encoders."""
        cfg = read_json(config)
        raw_scalers = read_json(scalers)
        temp = float(read_json(temperature)["temperature"])
        if not temp > 0:
            raise BabelfuseError(f"temperature must be > 0, got {temp}")
        features = cfg["features"]
        encoders = {m: get_encoder_cached(m, features[m]) for m in MODALITIES}
        keras_model = load_keras(model)
        scaler_arrays = {
            m: {k: np.asarray(raw_scalers[m][k], dtype=np.float64) for k in ("mean", "scale")}
            for m in MODALITIES
        }
        for m, arrays in scaler_arrays.items():
            check_finite(np.stack([arrays["mean"], arrays["scale"]]), ["mean", "scale"], f"{scalers} {m}")
        for m in MODALITIES:
            want = int(keras_model.input[m].shape[-1]) if isinstance(keras_model.input, dict) else None
            have = (encoders[m].dim, len(scaler_arrays[m]["mean"]))
            if have[0] != have[1] or (want is not None and want != have[0]):
                raise BabelfuseError(
                    f"{m}: encoder {features[m]['encoder']} gives {have[0]} dims, scalers.json has {have[1]}, "
                    f"the model expects {want}: the features params do not match the trained model"
                )
        return cls(
            model=keras_model,
            encoders=encoders,
            scalers=scaler_arrays,
            temperature=temp,
            languages=inputs.served_languages(cfg),
            limits=Limits.from_config(cfg["limits"]),
            features=features,
            media_root=cfg.get("media_root"),
            config=cfg,
        )

    def start_pool(self, processes: int, min_posts: int) -> None:
        """Split batches of ``min_posts`` or more over ``processes`` worker processes (0: never)."""
        if processes > 0 and self.pool is None and self.config is not None:
            self.pool = MediaPool(self.config, processes, min_posts)

    def root(self) -> Path | None:
        """Where media paths may be read from: ``BABELFUSE_MEDIA_ROOT`` (read per call), else the config."""
        folder = os.environ.get(MEDIA_ROOT_ENV) or self.media_root
        return Path(folder) if folder else None

    def media_context(self) -> MediaContext:
        """This predictor's checks and media encoders, as :func:`media_pool.decode_and_encode` takes them."""
        size, rate = int(self.features["image"]["size"]), int(self.features["audio"]["sample_rate"])
        return MediaContext(self.languages, self.limits, size, rate, {m: self.encoders[m] for m in MEDIA})

    def decode(self, frame: pd.DataFrame) -> Decoded:
        """Check and decode every row and encode its media: split over the pool when the batch is large
        (the texts are then encoded here while the workers run)."""
        rows = frame.to_dict("records")
        ctx, root = self.media_context(), self.root()
        if self.pool is not None and self.pool.wanted(len(rows)):
            texts: dict[int, np.ndarray | str] = {}
            decoded = self.pool.run(ctx, root, rows, meanwhile=lambda: texts.update(self.encode_texts(rows)))
            decoded.texts = texts
            return decoded
        return media_pool.decode_and_encode(ctx, root, 0, rows)

    def encode_texts(self, rows: list[dict[str, Any]]) -> dict[int, np.ndarray | str]:
        """Text vectors of the rows whose text passes :func:`inputs.check_text`, by row number (the
        row may still fail its other checks; then its vector goes unused)."""
        texts: dict[int, str] = {}
        for i, row in enumerate(rows):
            try:
                text = inputs.check_text(i, row.get("text"), self.limits)
            except PostError:
                continue
            if text is not None:
                texts[i] = text
        vectors = media_pool.encode_each(self.encoders["text"], list(texts.values()))
        return dict(zip(texts, vectors, strict=True))

    def model_inputs(self, decoded: Decoded) -> tuple[dict[str, np.ndarray], list[int]]:
        """Model inputs ``{text, image, audio, mask}`` of the posts that decoded and encoded, scaled like
        the fuse stage, and their row numbers; a post whose text cannot be encoded gets its error."""
        posts = decoded.posts
        raw = {**decoded.media, "text": np.zeros((len(posts), self.encoders["text"].dim), np.float32)}
        texts = [i for i, p in enumerate(posts) if p is not None and p.text is not None]
        vectors = dict(decoded.texts or {})
        missing = [i for i in texts if i not in vectors]
        encoded = media_pool.encode_each(self.encoders["text"], [posts[i].text for i in missing])
        vectors.update(zip(missing, encoded, strict=True))
        for i in texts:
            if isinstance(vectors[i], str):
                decoded.errors[i], posts[i] = (i, "post", vectors[i]), None
            else:
                raw["text"][i] = vectors[i]
        ok = [i for i, p in enumerate(posts) if p is not None]
        present = {"text": np.array([posts[i].text is not None for i in ok], dtype=bool)}
        present.update({m: decoded.present[ok, j] for j, m in enumerate(MEDIA)})
        out: dict[str, np.ndarray] = {}
        for modality in MODALITIES:
            scaler = self.scalers[modality]
            scaled = (raw[modality][ok].astype(np.float64) - scaler["mean"]) / scaler["scale"]
            out[modality] = np.where(present[modality][:, None], scaled, 0.0).astype(np.float32)
        out["mask"] = np.stack([present[m] for m in MODALITIES], axis=1).astype(np.float32)
        return out, ok

    def probabilities(self, model_inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Calibrated class probabilities (n, 3).

        ``predict_on_batch`` runs Keras' compiled predict function: ~1.6 ms for one post here, where
        an eager ``model(x)`` call costs ~30 ms.
        """
        raw = np.asarray(self.model.predict_on_batch(model_inputs), dtype=np.float64)
        return apply_temperature(raw, self.temperature)

    def predict(self, data: Any, on_error: str = "row", explained: bool = False) -> pd.DataFrame:
        """Raw posts -> ``label, prob_negative, prob_neutral, prob_positive, error`` (one row per post),
        plus ``contrib_<modality>`` when ``explained`` (:mod:`babelfuse.serving.explain`).

        With ``on_error='raise'`` the first bad row (in row order) raises its :class:`PostError`.
        """
        frame = inputs.check_request(data, self.limits)
        decoded = self.decode(frame)
        model_inputs, ok = self.model_inputs(decoded)
        first = next((e for e in decoded.errors if e is not None), None)
        if first is not None and on_error == "raise":
            raise PostError(*first)
        errors = [None if e is None else str(PostError(*e)) for e in decoded.errors]
        probs = np.full((len(errors), len(LABELS)), np.nan)
        contrib = np.zeros((len(errors), len(MODALITIES)))
        if ok and explained:
            result = shapley.explain(self.probabilities, model_inputs)  # one batch of 8 coalitions
            probs[ok], contrib[ok] = result.full, result.contrib
        elif ok:
            probs[ok] = self.probabilities(model_inputs)
        out = output_frame(probs, errors, language_columns(decoded.posts, self.languages))
        return explain.with_contributions(out, contrib, [e is not None for e in errors]) if explained else out


def language_columns(posts: list[Post | None], languages: inputs.Languages) -> dict[str, list[Any]]:
    """``lang_detected`` (the identified code when the caller sent none) and ``lang_seen_in_training``."""
    return {
        "lang_detected": [None if p is None else p.lang_detected for p in posts],
        "lang_seen_in_training": [None if p is None else languages.seen_in_training(p.lang) for p in posts],
    }


def output_frame(
    probs: np.ndarray, errors: list[str | None], languages: dict[str, list[Any]]
) -> pd.DataFrame:
    """The answer table; rows with an error have null label and probabilities (JSON ``null``, not NaN).

    ``label`` and ``error`` are object columns so a missing value stays ``None`` (pandas' string
    dtype would turn it into NaN, which is not valid JSON); probabilities are float64 unless a row
    failed, then object with ``None`` there.
    """
    failed = [e is not None for e in errors]
    labels = [None if failed[i] else LABELS[int(np.argmax(probs[i]))] for i in range(len(errors))]
    out: dict[str, pd.Series] = {"label": pd.Series(labels, dtype=object)}
    for k, column in enumerate(PROB_COLUMNS):
        values = probs[:, k].astype(np.float64)
        if any(failed):
            out[column] = pd.Series(
                [None if failed[i] else float(values[i]) for i in range(len(errors))], dtype=object
            )
        else:
            out[column] = pd.Series(values)
    for column in LANGUAGE_COLUMNS:  # :func:`language_columns`; null on a failed row
        out[column] = pd.Series(
            [None if failed[i] else v for i, v in enumerate(languages[column])], dtype=object
        )
    out["error"] = pd.Series(errors, dtype=object)
    return pd.DataFrame(out, columns=list(OUTPUT_COLUMNS))


class BabelfuseModel(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc: artifacts ``model`` (.keras), ``scalers``, ``temperature``, ``config`` (serving.json)."""

    def load_context(self, context) -> None:
        a = context.artifacts
        # optional keys: bundles registered before register.inference_log / media_processes have none
        cfg = read_json(a["config"])
        memory.configure(cfg)  # first: the threads TensorFlow starts then share the one arena
        self.predictor = Predictor.from_files(a["model"], a["scalers"], a["temperature"], a["config"])
        self.inference_log = cfg.get("inference_log")
        self.predictor.start_pool(*media_pool.pool_settings(cfg, os.environ.get(media_pool.ENV)))
        media_pool.warm_up(self.predictor.encoders)  # small requests stay here: one-time costs paid now
        no_tracebacks_in_responses()
        bound_requests(self.predictor.limits)

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        start = time.perf_counter()
        out = guarded_predict(self.predictor, model_input, params)
        if self.inference_log:
            traffic.log_request(
                self.predictor, model_input, out, time.perf_counter() - start, self.inference_log
            )
        return out


def no_tracebacks_in_responses() -> None:
    """Keep stack traces out of the scoring server's answers to unparsable CSV/Parquet bodies too.

    MLflow 3.17's ``mlflow models serve`` adds a ``stack_trace`` field when *it* fails to parse a CSV
    or Parquet request body (``_handle_serving_error(..., include_traceback=True)``), before the model
    runs. When the server has loaded this model, that helper is wrapped to leave the trace out; the
    message stays. Nothing changes if the server module is not loaded or has no such helper.
    """
    server = sys.modules.get("mlflow.pyfunc.scoring_server")
    original = getattr(server, "_handle_serving_error", None)
    if original is None or getattr(original, "_babelfuse", False):
        return

    def without_traceback(error_message, error_code, include_traceback=True):
        return original(error_message, error_code, include_traceback=False)

    without_traceback._babelfuse = True
    server._handle_serving_error = without_traceback


def bound_requests(limits: Limits) -> None:
    """Bound ``mlflow models serve``'s request handling before it materialises a body.

    MLflow 3.17's scoring server bounds nothing but the time (``MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT``,
    default 60 s, after which it answers 504 while the work goes on): it reads the whole body, then
    parses it (JSON, CSV or Parquet) into a DataFrame before the model sees a row. When the server
    has loaded this model, two of its module-level helpers are wrapped (the app is built after the
    model loads, so the wrapping applies to it):

    * the ``/invocations`` endpoint reads at most ``limits.max_request_bytes`` (413 on a larger
      ``Content-Length`` or stream) before the server's own handler runs;
    * ``invocations`` refuses a body with too many rows or too deep JSON
      (:func:`inputs.body_problem`) with a 400 before parsing, and parses JSON itself, so malformed
      JSON is a short 400 (MLflow's own message would echo the whole body).

    The server's request frames also get object columns (:func:`object_string_columns`).
    Nothing changes outside the scoring server or if its helpers are not there. The server is the
    process importing ``mlflow.pyfunc.scoring_server.app`` (what ``mlflow models serve`` runs; its
    import loads the model): MLflow also imports ``scoring_server`` in a process that merely logs
    this model, to check the input example, and that process must keep its own pandas and MLflow.
    """
    if SERVER_APP not in sys.modules:
        return
    server = sys.modules.get("mlflow.pyfunc.scoring_server")
    invocations = getattr(server, "invocations", None)
    catch = getattr(server, "_async_catch_mlflow_exception", None)
    if invocations is None or catch is None or getattr(invocations, "_babelfuse", False):
        return

    def bounded_invocations(data, content_type, model, input_schema):
        problem = inputs.body_problem(data, content_type, limits) if isinstance(data, bytes) else None
        if problem is None and isinstance(data, bytes) and "json" in str(content_type).lower():
            data, problem = _parse_json(data)
        if problem is not None:
            raise MlflowException(problem, error_code=INVALID_PARAMETER_VALUE)
        return invocations(data, content_type, model, input_schema)

    def catch_with_size_bound(func):
        @functools.wraps(func)
        async def bounded(request, *args, **kwargs):
            refusal = await _read_bounded_body(request, limits)
            return refusal if refusal is not None else await func(request, *args, **kwargs)

        return catch(bounded)

    bounded_invocations._babelfuse = True
    server.invocations = bounded_invocations
    server._async_catch_mlflow_exception = catch_with_size_bound
    object_string_columns()


def object_string_columns() -> None:
    """Let the scoring server build request frames with object columns, not pandas' Arrow strings.

    pandas 3 stores parsed JSON strings in Arrow buffers: for a 70 MB body of base64 media that is a
    copy into Arrow (~27 ms) and another back to Python strings when :func:`inputs.check_request`
    takes the columns (~52 ms), for values it then holds as Python objects anyway. Object columns
    keep the parsed strings themselves (~2 ms). The pandas option is deprecated for pandas 4: where
    it is gone, frames keep Arrow strings (slower, the same answers).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pandas4Warning: the option's deprecation
        try:
            pd.set_option("future.infer_string", False)
        except (KeyError, pd.errors.OptionError):
            log.info("pandas has no future.infer_string option: request frames keep Arrow strings")


async def _read_bounded_body(request, limits: Limits):
    """Read the body into ``request._body`` (Starlette's cache), stopping early when it cannot be valid.

    Stops at more than ``limits.max_request_bytes`` (413; a larger ``Content-Length`` is refused
    before reading) or, for JSON/CSV, at more quotes or commas than any ``max_rows`` posts can hold
    (400): a row flood is refused after a few MB. Returns None when the body was read, else the
    response to send instead.
    """
    from fastapi.responses import Response  # only the scoring server has (and needs) FastAPI

    def refuse(status: int, message: str) -> Response:
        content = json.dumps({"error_code": "INVALID_PARAMETER_VALUE", "message": message})
        return Response(content=content, status_code=status, media_type="application/json")

    max_bytes = limits.max_request_bytes
    too_large = f"more than the limit of {max_bytes:,} (register.max_request_mb)"
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        return refuse(413, f"request body is {int(declared):,} bytes, {too_large}")
    textual = any(k in request.headers.get("content-type", "") for k in ("json", "csv"))
    quotes = commas = 0
    limit = inputs.stream_separator_limit(limits)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            return refuse(413, f"request body is {too_large}")
        if textual and (b'"' in chunk or b"," in chunk):  # memchr: most chunks are inside a base64 string
            quotes, commas = quotes + chunk.count(b'"'), commas + chunk.count(b",")
            if max(quotes, commas) > limit:
                return refuse(
                    400,
                    f"request body holds more values than {limits.max_rows:,} rows can (register.max_rows): split it",
                )
    request._body = b"".join(chunks)
    return None


def _parse_json(data: bytes) -> tuple[Any, str | None]:
    """The parsed JSON body, or a short reason it is malformed (never the body itself)."""
    try:
        parsed = json.loads(data)
        if not isinstance(parsed, dict):
            return None, (
                "request JSON must be an object with one of dataframe_split, dataframe_records, "
                f"inputs, instances; got a {type(parsed).__name__}"
            )
        return inputs.mark_invalid_unicode(parsed), None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        reason = (
            f"{err.msg} at line {err.lineno} column {err.colno}"
            if isinstance(err, json.JSONDecodeError)
            else type(err).__name__
        )
        return None, f"request body is not valid JSON ({inputs.shorten(reason, 120)})"


def guarded_predict(predictor: Predictor, model_input: Any, params: dict[str, Any] | None) -> pd.DataFrame:
    """``Predictor.predict`` with every failure turned into an ``MlflowException`` without a traceback."""
    try:
        return predictor.predict(model_input, inputs.check_on_error(params), explain.check_explain(params))
    except (RequestError, PostError) as err:
        raise MlflowException(str(err), error_code=INVALID_PARAMETER_VALUE) from None
    except BabelfuseError as err:
        raise MlflowException(f"bad input: {err}", error_code=INVALID_PARAMETER_VALUE) from None
    except Exception as err:  # noqa: BLE001 - the log keeps the traceback; the caller gets one line
        log.exception("prediction failed")
        raise MlflowException(
            f"internal error while predicting ({type(err).__name__}); see the server log",
            error_code=INTERNAL_ERROR,
        ) from None
