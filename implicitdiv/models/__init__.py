"""The model set: every model's objective written once with implicitdiv's public functions, a
registry MODELS (name -> spec), toy data, metrics and a trainer.

    from implicitdiv.models import MODELS, train, evaluate, load_data
    run = train("dali", load_data("grid25"), backend="cpp", seed=0)
    print(evaluate(run))
"""
from .data import load as load_data
from .registry import MODELS
from .trainer import PAPER, TrainConfig, evaluate, run_from_cli, train

__all__ = ["MODELS", "PAPER", "TrainConfig", "evaluate", "load_data", "run_from_cli", "train"]
