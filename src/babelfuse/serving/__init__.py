"""Serving: the end-to-end MLflow pyfunc, the ``register`` stage, the promotion gate, prediction.

Modules: ``inputs`` (request and post checks), ``pyfunc`` (:class:`~babelfuse.serving.pyfunc.Predictor`
and the MLflow ``PythonModel``), ``model_code`` (the pyfunc logged as code: nothing pickled),
``bundle`` (artifacts, signature, example, pinned pip requirements), ``register`` (stage main),
``gate`` (the pure promote/refuse decision), ``frozen`` (the frozen test set), ``promote``
(registry I/O of the gate), ``predict`` (one post from local files, for the CLI).

Errors, as the served model answers them (``mlflow models serve`` turns them into HTTP status codes):

* **Malformed request -> the whole request fails, HTTP 400** with a one-line message: not a table,
  column ``text`` or ``lang`` missing, a value of the wrong type (a number as text, ...), more rows
  than ``register.max_rows``, an unknown ``params.on_error``. MLflow's own schema check gives the
  same status for columns that do not match the signature.
* **A bad post -> answered per row (HTTP 200)**: ``label`` and probabilities are null and ``error``
  says what is wrong (``row 2: image: cannot decode image ...``): empty text, unknown language,
  text longer than ``register.max_text_chars``, undecodable image or audio, a media item larger
  than ``register.max_media_mb`` or a clip longer than ``register.max_audio_seconds``, a file path
  when the server allows none. The other rows are predicted. Send ``"params": {"on_error": "raise"}``
  to make the first bad post fail the whole request with HTTP 400 instead (``babelfuse predict``
  does this).
* **A missing modality is not an error**: null / None / NaN (or an absent ``image``/``audio``
  column) is a zero vector with mask 0 and is answered. A post with no modality at all is a bad post.
* **An oversize or hostile body -> 413 / 400 before it is parsed** (``mlflow models serve`` only):
  more than ``register.max_request_mb``, more rows than ``max_rows`` can need, JSON nested more
  than 32 levels, malformed JSON (a short reason, never the body). See ``docs/SECURITY.md``.
* **Anything unexpected -> HTTP 500** "internal error while predicting (<type>)"; the traceback goes
  to the server log only. No response ever carries a stack trace.

Media paths are read from the *server's* disk only below ``BABELFUSE_MEDIA_ROOT`` (resolved with
``resolve_inside``); without it only base64 (or ``data:`` URIs) is accepted.
"""
