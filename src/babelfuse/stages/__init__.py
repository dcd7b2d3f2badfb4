"""One thin entry point per ``dvc.yaml`` stage: ``python -m babelfuse.stages.<stage>``.

Each module parses its arguments, reads its params.yaml sections, calls the library functions that
do the work, writes the stage's outputs and logs one MLflow run. ``docs/ARCHITECTURE.md`` maps each
stage to the library modules it calls and the files it writes.
"""
