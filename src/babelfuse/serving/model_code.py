"""The pyfunc as code (MLflow "models from code"): logging stores this file, loading runs it.

Nothing is pickled: the served model is this module's :class:`BabelfuseModel` plus its artifacts.
"""

from mlflow.models import set_model

from babelfuse.serving.pyfunc import BabelfuseModel

set_model(BabelfuseModel())
