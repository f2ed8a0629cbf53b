"""Reproducible recipes that build the project's offline assets.

- `red_core.recipes.defaults`: the default tokenizer, reward model and base policy in
  `assets/models/` (run `python -m red_core.recipes.defaults --help`).
"""
