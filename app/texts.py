"""The prose of the app: title, "how to read this" panels, and help texts. Markdown only."""

TITLE = "RED: token-level rewards from a sequence reward model"

INTRO = (
    "A reward model gives one score to a whole response. **RED** (Li et al., EMNLP 2025) hands that score out to "
    "the tokens: each token gets the change in the score that it caused, "
    "r<sub>t</sub> = R(x, y<sub>≤t</sub>) − R(x, y<sub>≤t−1</sub>). Type a prompt and a response, press **Score**.")

HOW_TO_EXPLORE = """
- **Colours.** Each box is one token of the response (or one word / sentence, if you pick that granularity).
  Blue: the token raised the reward model's score; red: it lowered it; white: no change. The legend gives the
  scale, which is symmetric around zero. *Colour scale* picks what full colour means: the largest reward of
  this text, a fixed ±X, or the largest this session has seen (so two texts can be compared by colour).
- **Tap or click** a token for its number, exact text, token ids, reward and *prefix score* R(x, y≤t) (the
  score of the response cut right after it) before and after it; *What if?* then opens on it.
- **Live.** Changing the method, the granularity, β<sub>c</sub>, β or the prompt baseline re-scores at once;
  results being recomputed are greyed out and marked "updating…".
- **RED's reward is the change in the prefix score.** The chain starts at R(x, ∅), the score of the prompt alone,
  so the rewards add up to R(x, y) − R(x, ∅). The table of numbers checks that sum (✓). Untick *prompt baseline*
  (the paper's "w/o DI") and the chain starts at 0 instead, so the sum is R(x, y).
- **β<sub>c</sub>** mixes RED with the ordinary sparse reward (all of R(x, y) on the last token): 1 is pure RED,
  0 is plain RLHF.
- **Dashed boxes** are template tokens (end-of-turn, EOS) the model scores after your text; *show special tokens*
  hides them from the picture (their reward still counts in the sum).
- **Step through** walks the response one token at a time: watch the prefix score move and each token's reward
  appear.
- **Caveat.** Reward models are trained on whole responses; what they say about a half-finished response is an
  assumption. The prefix-score line in the plot shows you what they actually say.
"""

HOW_TO_COMPARE = """
- **Credit methods.** The same text under four ways of handing out one score: **RED** (change in prefix score),
  **ABC** (split by the reward model's own attention, mixed with sparse by β), **uniform** (equal shares) and
  **sparse** (everything on the last token, what PPO normally sees). One shared colour scale: equal colours mean
  equal rewards across panels. RED's and sparse's rewards sum to different totals when R(x, ∅) ≠ 0; that is the
  prompt baseline, not an error.
- **Chosen vs rejected.** Two answers to one prompt. The margin R(x, chosen) − R(x, rejected) is what preference
  training pushes up; σ(margin) is the Bradley–Terry probability that chosen wins. The aligned table puts shared
  tokens side by side, so you can see where the two answers part ways and which tokens carry the difference.
- **Two reward models.** The model picked at the top (A) against another (B) on the same text. If they split the
  text into different tokens, rewards are moved onto words by character offsets, keeping each model's sum.
  Different models score on different scales; untick *shared colour scale* to colour each on its own.
"""

HOW_TO_STEP = ("Move the slider, use ◀ / ▶, or press ▷ Play (tokens are counted from 1). Earlier tokens keep their "
               "colour, the current one is outlined (and marked in the plot above), later ones are grey: the reward "
               "model has not seen them yet.")

LESSONS_INTRO = ("Short guided looks at RED, for a class or for yourself. Pick one: it opens the tab it needs, fills "
                 "it in, scores, and says above the tabs what to notice. Every view can be shared: *Copy link to "
                 "this view* under the Explore results makes a link that opens the same view.")

RM_HELP = ("The bundled default, or type a Hugging Face hub id (e.g. Skywork/Skywork-Reward-V2-Qwen3-0.6B) or a local "
           "folder and press Load. Safetensors only; no remote code.")

RM_HELP_PUBLIC = ("This public app offers the bundled models and a short list of hub models (pick one and press Load). "
                  "To load any folder or hub id, run the app yourself: python -m app.")
