"""Typed experiment configuration, in layers (docs/DESIGN.md).

* ``base``       - one frozen dataclass per section (model, data, train, variant, contrast)
* ``pretraining`` - the ``pretrain:`` section's dataclass
* ``tune``       - the ``tune:`` section's dataclass and its grid arithmetic
* ``experiment`` - ``ExperimentConfig``: the sections together
* ``checks``     - the schema and the cross-field checks, each naming the key
* ``loader``     - YAML and defaults to a checked ``ExperimentConfig``

Each layer imports only the ones above it in this list. The names below are the
package's public surface.
"""

from workflow_scripts.config.base import (
    TIMESERIES_INITS,
    ConfigError,
    ContrastConfig,
    DataConfig,
    GpuSlotsConfig,
    ModelConfig,
    TrainConfig,
    VariantConfig,
    is_local_model_path,
    model_slug,
)
from workflow_scripts.config.experiment import ExperimentConfig
from workflow_scripts.config.loader import (
    SCHEMA_PATH,
    load_experiment,
    load_experiment_file,
    load_schema,
)
from workflow_scripts.config.pretraining import PRETRAIN_VARIANT, PretrainConfig
from workflow_scripts.config.tune import (
    RATE_KEYS,
    TuneConfig,
    point_multiplier,
    point_name,
    tuning_variant,
    with_rates,
)

__all__ = [
    "PRETRAIN_VARIANT",
    "RATE_KEYS",
    "SCHEMA_PATH",
    "TIMESERIES_INITS",
    "ConfigError",
    "ContrastConfig",
    "DataConfig",
    "ExperimentConfig",
    "GpuSlotsConfig",
    "ModelConfig",
    "PretrainConfig",
    "TrainConfig",
    "TuneConfig",
    "VariantConfig",
    "is_local_model_path",
    "load_experiment",
    "load_experiment_file",
    "load_schema",
    "model_slug",
    "point_multiplier",
    "point_name",
    "tuning_variant",
    "with_rates",
]
