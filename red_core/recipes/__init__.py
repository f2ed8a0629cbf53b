"""Reproducible recipes that build the project's offline assets.

- `red_core.recipes.defaults`: the default tokenizer, reward model and base policy in
  `assets/models/` (run `python -m red_core.recipes.defaults --help`).
- `red_core.recipes.policy_red`: `assets/models/policy-red`, policy-base after RED-PPO
  (run `python -m red_core.recipes.policy_red --help`).
- `red_core.recipes.cards`: their model cards, Jinja templates in `templates/` rendered by
  `huggingface_hub.ModelCard`.
"""
