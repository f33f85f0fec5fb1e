"""The model set: every model's objective written once with implicitdiv's public functions, a
registry MODELS (name -> spec), toy data, metrics and a trainer.

    from implicitdiv.models import MODELS, train, evaluate, evaluate_seeds, load_data
    run = train("dali", load_data("grid25"), backend="cpp", seed=0)
    print(evaluate(run))
    runs = train("dali", lambda s: load_data("grid25", seed=s), seeds=range(5))  # five seeds, one stack
    print(evaluate_seeds(runs))
"""
from .data import load as load_data
from .registry import MODELS
from .evaluation import evaluate, evaluate_seeds
from .train_command import run_from_cli
from .trainer import PAPER, TrainConfig, train

__all__ = ["MODELS", "PAPER", "TrainConfig", "evaluate", "evaluate_seeds", "load_data", "run_from_cli", "train"]
