"""RED-PPO: train a causal-LM policy with PPO (or REINFORCE++) on token-level rewards from a sequence reward model.

    from red_core.train import TrainConfig, train
    summary = train(TrainConfig(method="red", steps=40, out="runs/red"))

Modules: config (TrainConfig), rewards (RM credit + KL penalty), kl (fixed or adaptive KL β), gae
(advantages: GAE, REINFORCE++ returns), ppo (the five phases, resume, the run), checkpoints (the run
folder on disk: checkpoints, metrics, faults), cli (`python -m red_core train`). The policy comparison
and train-live panel of the app are in red_core.policies.
"""

from red_core.train.checkpoints import RunFolderError, latest_checkpoint, read_metrics
from red_core.train.config import TrainConfig, read_prompts
from red_core.train.kl import AdaptiveKL, FixedKL
from red_core.train.ppo import PPOTrainer, train

__all__ = ["AdaptiveKL", "FixedKL", "PPOTrainer", "RunFolderError", "TrainConfig", "latest_checkpoint", "read_metrics",
           "read_prompts", "train"]
