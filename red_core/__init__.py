"""red_core: token-level rewards (RED) from any Hugging Face reward model.

    import red_core
    rm = red_core.load_reward_model("path/or/hub-id")      # no argument: the offline default
    tr = red_core.token_rewards(rm, prompt, response, method="red")
    tr.tokens, tr.offsets, tr.rewards, tr.prefix_scores, tr.score, tr.baseline
"""

from red_core.api import token_rewards, token_rewards_batch
from red_core.methods import list_methods
from red_core.models import RewardModel, RewardModelError, encode, load_policy, load_reward_model
from red_core.result import TokenRewards

__all__ = ["RewardModel", "RewardModelError", "TokenRewards", "encode", "list_methods", "load_policy",
           "load_reward_model", "token_rewards", "token_rewards_batch"]
__version__ = "0.1.0"
