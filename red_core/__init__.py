"""red_core: token-level rewards (RED) from any Hugging Face reward model.

    import red_core
    rm = red_core.load_reward_model("path/or/hub-id")      # no argument: the offline default
    tr = red_core.token_rewards(rm, prompt, response, method="red")
    tr.tokens, tr.offsets, tr.rewards, tr.prefix_scores, tr.score, tr.baseline
    cf = red_core.counterfactual(rm, prompt, response, start, end, "new words")   # what if ...?
    loo = red_core.leave_one_out(rm, prompt, response)   # score change from deleting each word
"""

from red_core.api import token_rewards, token_rewards_batch
from red_core.methods import list_methods
from red_core.models import RewardModel, RewardModelError, encode, load_policy, load_reward_model
from red_core.result import TokenRewards
from red_core.whatif import (
    Counterfactual,
    LeaveOneOut,
    alternatives,
    counterfactual,
    leave_one_out,
    leave_one_out_loop,
)

__all__ = ["Counterfactual", "LeaveOneOut", "RewardModel", "RewardModelError", "TokenRewards", "alternatives",
           "counterfactual", "encode", "leave_one_out", "leave_one_out_loop", "list_methods", "load_policy",
           "load_reward_model", "token_rewards", "token_rewards_batch"]
__version__ = "0.1.0"
