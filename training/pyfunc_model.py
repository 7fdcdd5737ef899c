"""MLflow models-from-code entry point: the file stored with every registered version.

MLflow executes it when loading a version (never imported by the package): it names the
wrapper class, which then loads the saved model from the version's artifacts.
"""

from mlflow.models import set_model

from training.pyfunc import RadarPyfunc

set_model(RadarPyfunc())
