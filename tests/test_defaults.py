"""The offline default models (assets/models) and the recipes that build them (red_core.recipes).

Behavioural checks that a broken, retrained-wrong or swapped model would fail, plus a tiny end-to-end
run of the recipe. The whole file takes well under 30 s on 2 CPU cores.
"""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import red_core
from red_core.recipes import defaults as recipe
from red_core.recipes import policy_red
from red_core.train import read_metrics

ROOT = Path(__file__).resolve().parents[1]
REWARD_DIR = ROOT / "assets" / "models" / "reward"
POLICY_DIR = ROOT / "assets" / "models" / "policy-base"
POLICY_RED_DIR = ROOT / "assets" / "models" / "policy-red"


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No hub look-ups. huggingface_hub reads HF_HUB_OFFLINE once, when imported: tests/conftest.py sets it
    before that; here it is set for each test too, for code that reads the variable later."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def without_vader(monkeypatch):
    """vadersentiment not installed: its import fails, and so does asking for its version."""
    import importlib.metadata

    real_version = importlib.metadata.version

    def version(name):
        if name.lower() == "vadersentiment":
            raise importlib.metadata.PackageNotFoundError(name)
        return real_version(name)

    for module in ("vaderSentiment", "vaderSentiment.vaderSentiment"):
        monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.setattr(importlib.metadata, "version", version)


@pytest.fixture(scope="module")
def rm():
    return red_core.load_reward_model()  # no argument: the offline default


@pytest.fixture(scope="module")
def policy():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return (AutoModelForCausalLM.from_pretrained(POLICY_DIR, dtype=torch.float32).eval(),
            AutoTokenizer.from_pretrained(POLICY_DIR))


# ----------------------------------------------------------------------------- shipped assets

def test_assets_are_small_and_complete():
    total = 0
    for folder in (REWARD_DIR, POLICY_DIR):
        names = {p.name for p in folder.iterdir()}
        assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "README.md",
                "evaluation.json"} <= names, names
        assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in names), "pickle weights must not ship"
        total += sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert total < 25e6, f"defaults take {total / 1e6:.1f} MB, budget 25 MB"


def test_default_reward_model_loads_offline(rm):
    assert Path(rm.name).resolve() == REWARD_DIR.resolve()
    assert rm.kind == "causal"
    tok = rm.tokenizer
    assert tok("").input_ids == [tok.bos_token_id], "an empty prompt must still be one token (<bos>)"
    assert tok("Hello.").input_ids[0] == tok.bos_token_id and tok("Hello.").input_ids.count(tok.bos_token_id) == 1
    assert tok.pad_token_id is not None and tok.pad_token_id != tok.eos_token_id
    assert not getattr(tok, "chat_template", None)
    assert rm.model.config.num_labels == 1 and rm.model.config.pad_token_id == tok.pad_token_id
    assert next(rm.model.parameters()).dtype == torch.float32


def test_policy_shares_the_tokenizer_and_samples_english(rm, policy):
    model, tok = policy
    assert tok.get_vocab() == rm.tokenizer.get_vocab()
    assert model.config.eos_token_id == tok.eos_token_id and model.config.pad_token_id == tok.pad_token_id
    gc = model.generation_config
    assert gc.do_sample and gc.temperature == 1.0 and not gc.top_k and gc.top_p == 1.0
    torch.manual_seed(0)
    enc = tok(["Tell me something.\n"] * 4, return_tensors="pt")
    out = model.generate(**enc, max_new_tokens=30)
    texts = [tok.decode(row[enc.input_ids.shape[1]:], skip_special_tokens=True) for row in out]
    words = " ".join(texts).split()
    assert len(words) >= 8
    # mostly real words made of letters (a random or swapped model produces byte soup)
    assert np.mean([w.strip(".,;:!?'\"()-").isalpha() for w in words]) > 0.7, texts


def test_policy_loads_through_red_core():
    model, tok = red_core.load_policy()
    assert model.config.architectures == ["LlamaForCausalLM"] and tok.pad_token_id != tok.eos_token_id


# ----------------------------------------------------------------------------- behaviour of the reward model

POSITIVE_NEGATIVE = [
    ("It was a wonderful day and I am very happy.", "It was a terrible day and I feel awful."),
    ("Love is the best gift of all.", "War is a cruel and stupid waste."),
    ("You will have a pleasant surprise.", "You will have a painful accident."),
    ("She is a kind and honest friend.", "She is a cruel and dishonest enemy."),
]


@pytest.mark.parametrize("prompt", ["", "Tell me something.\n"])
def test_positive_scores_above_negative(rm, prompt):
    pos, neg = zip(*POSITIVE_NEGATIVE)
    trs = red_core.token_rewards_batch(rm, [prompt] * 8, list(pos) + list(neg), method="red")
    scores = np.array([tr.score for tr in trs])
    assert np.all(scores[:4] > scores[4:] + 0.3), scores
    assert np.all(scores[:4] > 0) and np.all(scores[4:] < 0), scores


# One clearly dominant sentiment word in an otherwise neutral sentence.
STRONGEST_WORD = [
    ("The weather today is wonderful.", "wonderful."),
    ("My neighbour is a horrible man.", "horrible"),
    ("This is a stupid idea.", "stupid"),
    ("The soldiers died in the war.", "died"),
    ("I love the smell of coffee.", "love"),
    ("The garden is beautiful in June.", "beautiful"),
]


@pytest.mark.parametrize("prompt", ["", "What do you think?\n"])
def test_strongest_sentiment_word_gets_the_largest_red_reward(rm, prompt):
    trs = red_core.token_rewards_batch(rm, [prompt] * len(STRONGEST_WORD), [s for s, _ in STRONGEST_WORD],
                                       method="red")
    for tr, (sentence, word) in zip(trs, STRONGEST_WORD):
        w = tr.aggregate("word")
        texts = [t.strip() for t in w.texts]
        top = texts[int(np.argmax(np.abs(w.rewards)))]
        assert top == word, f"{sentence!r}: largest |reward| on {top!r}, expected {word!r}: " \
                            f"{dict(zip(texts, np.round(w.rewards, 3)))}"
        assert np.isclose(w.rewards.sum(), tr.score - tr.baseline, atol=1e-4)


def test_shipped_evaluation_has_red_ahead():
    res = json.loads((REWARD_DIR / "evaluation.json").read_text())
    assert res["reward_model"]["pairwise_accuracy"] > 0.75 and res["reward_model"]["pearson"] > 0.7
    table = res["credit"]["methods"]
    for key in ("pearson_lexicon", "pearson_in_context", "top_word_accuracy"):
        assert table["red"][key] > max(table[m][key] for m in ("abc", "uniform", "sparse")) + 0.1, key


def test_examples_file():
    examples = json.loads((ROOT / "assets" / "examples.json").read_text())
    assert 8 <= len(examples) <= 12
    assert len({e["name"] for e in examples}) == len(examples)
    assert all(set(e) == {"name", "prompt", "response"} and e["response"] for e in examples)
    assert any("negated" in e["name"] for e in examples) and any("mixed" in e["name"] for e in examples)


# ----------------------------------------------------------------------------- the recipe

def test_config_validation():
    # the corpus folder is checked where it is read, so --cards-only and --help work without it
    assert recipe.RecipeConfig(fortune_dir="/nonexistent").fortune_dir == "/nonexistent"
    with pytest.raises(ValueError, match="heldout_frac"):
        recipe.RecipeConfig(heldout_frac=0.0)
    with pytest.raises(ValueError, match="must divide"):
        recipe.RecipeConfig(rm_hidden=250)
    with pytest.raises(ValueError, match="newline"):
        recipe.RecipeConfig(prompts=("No newline",))
    assert recipe.RecipeConfig(exclude_files="a, b").exclude_files == ("a", "b")


def test_missing_corpus_says_how_to_get_it(tmp_path):
    for folder in (tmp_path / "missing", tmp_path):  # no folder; a folder without fortune files
        cfg = recipe.RecipeConfig(fortune_dir=str(folder), out_dir=str(tmp_path / "out"))
        with pytest.raises(FileNotFoundError, match="apt-get install fortunes fortunes-min") as err:
            recipe.build_corpus(cfg)
        assert "--fortune-dir" in str(err.value)


def test_tiny_reads_the_corpus_shipped_with_the_tests(tmp_path):
    cfg = recipe.parse_args(["--tiny", "--out-dir", str(tmp_path)])
    assert cfg.tiny and Path(cfg.fortune_dir) == recipe.MINI_FORTUNE_DIR == ROOT / "tests" / "data" / "fortunes-mini"
    assert recipe.parse_args(["--tiny", "--fortune-dir", "/x", "--out-dir", str(tmp_path)]).fortune_dir == "/x"
    assert recipe.RecipeConfig().fortune_dir == recipe.DEBIAN_FORTUNE_DIR  # the full build: Debian's packages
    fortunes = recipe.read_fortunes(cfg)
    assert len(fortunes) > 80 and not any("--" in f or "/\\" in f for f in fortunes)  # attributions, ascii-art
    train, held = recipe.build_corpus(cfg)
    assert len(train) > 60 and len(held) > cfg.credit_texts
    lab = recipe.VaderLabeller()
    labels = np.array([lab.compound(s) for s in train + held])
    assert min((labels > 0.05).sum(), (labels < -0.05).sum(), (np.abs(labels) <= 0.05).sum()) >= 20, labels


def test_labeller_word_valences():
    lab = recipe.VaderLabeller()
    lexicon, in_context = lab.word_valences("This is not good at all.")
    assert len(lexicon) == len(in_context) == 6
    assert lexicon[3] > 0 and in_context[3] < 0  # "good", negated by "not"
    assert lexicon[0] == lexicon[1] == 0


def test_swap_word_is_seeded_and_keeps_punctuation():
    import random

    pool = ["happy", "sad"]
    a = recipe.swap_word("The cat is good.", pool, {"good": 1.9}, random.Random(1))
    b = recipe.swap_word("The cat is good.", pool, {"good": 1.9}, random.Random(1))
    assert a == b and a in ("The cat is happy.", "The cat is sad.")


def test_missing_vader_says_what_to_install(without_vader):
    for make in (recipe.VaderLabeller, recipe.vader_version):
        with pytest.raises(ImportError, match=r"pip install vadersentiment==3\.3\.2`, or `pip install \.\[recipes\]"):
            make()


def test_correlations_match_hand_computed_values():
    # deviations from the means: (-1.5, -0.5, 0.5, 1.5) and (-1.5, 0.5, -0.5, 1.5): 4 / sqrt(5 * 5)
    assert recipe.pearson([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8, abs=1e-12)
    # tied values share their average rank: ranks (1, 2.5, 2.5, 4) and (1, 3, 2, 4): 4.5 / sqrt(4.5 * 5)
    assert recipe.spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(3 / 10 ** 0.5, abs=1e-12)
    # monotone but not linear: deviations (-1, 0, 1) and (-11/3, -2/3, 13/3): 8 / sqrt(2 * 98/3) = 4 sqrt(3) / 7
    assert recipe.spearman([1, 2, 3], [1, 4, 9]) == pytest.approx(1.0, abs=1e-12)
    assert recipe.pearson([1, 2, 3], [1, 4, 9]) == pytest.approx(4 * 3 ** 0.5 / 7, abs=1e-12)
    assert recipe.spearman([3, 2, 1], [10, 20, 30]) == pytest.approx(-1.0, abs=1e-12)
    for corr in (recipe.pearson, recipe.spearman):  # undefined: a constant sequence, or a nan (not dropped)
        assert np.isnan(corr([1, 1, 1], [1, 2, 3])) and np.isnan(corr([1, 2, 3], [1, float("nan"), 3]))


def test_recipe_tiny_end_to_end(tmp_path):
    from huggingface_hub import ModelCard

    cfg = recipe.RecipeConfig.make_tiny(out_dir=str(tmp_path))
    res = recipe.build(cfg)
    # the smoke preset, not the full build: its data and model sizes are what was trained and saved
    assert res["data"]["n_train"] + res["data"]["n_heldout"] <= cfg.max_texts == 400
    for sub, prefix in (("reward", "rm"), ("policy-base", "policy")):
        config = json.loads((tmp_path / sub / "config.json").read_text())
        assert (config["num_hidden_layers"], config["hidden_size"]) == (getattr(cfg, f"{prefix}_layers"),
                                                                        getattr(cfg, f"{prefix}_hidden")) == (1, 32)
    for sub in ("reward", "policy-base"):
        assert (tmp_path / sub / "model.safetensors").exists() and (tmp_path / sub / "README.md").exists()
    card = ModelCard.load(tmp_path / "reward" / "README.md")  # front matter the Hub reads
    assert (card.data.license, card.data.pipeline_tag) == ("bsd-3-clause", "text-classification")
    assert "reward-model" in card.data.tags and card.text.startswith("# red_core default reward model")
    assert ModelCard.load(tmp_path / "policy-base" / "README.md").data.pipeline_tag == "text-generation"
    assert set(res["credit"]["methods"]) == {"red", "abc", "uniform", "sparse"}
    assert res["policy"]["n_samples"] == cfg.eval_samples
    rm_tiny = red_core.load_reward_model(tmp_path / "reward")
    tr = red_core.token_rewards(rm_tiny, "", "A short test.", method="red")
    assert np.isclose(tr.rewards.sum(), tr.score - tr.baseline, atol=1e-5)
    # --cards-only rewrites the same cards from evaluation.json alone (no corpus, no training)
    cards = {sub: (tmp_path / sub / "README.md").read_text() for sub in ("reward", "policy-base")}
    assert "fortunes-mini" in cards["reward"] and "Debian packages" not in cards["reward"]
    for sub in cards:
        (tmp_path / sub / "README.md").unlink()
    recipe.main(["--cards-only", "--out-dir", str(tmp_path)])
    assert {sub: (tmp_path / sub / "README.md").read_text() for sub in cards} == cards


def test_cards_only_reproduces_the_shipped_cards(tmp_path, without_vader):
    for folder in (REWARD_DIR, POLICY_DIR):  # a copy: --cards-only rewrites README.md in place
        shutil.copytree(folder, tmp_path / folder.name, ignore=shutil.ignore_patterns("README.md"))
    recipe.main(["--cards-only", "--out-dir", str(tmp_path)])  # VADER's version is in evaluation.json
    for folder in (REWARD_DIR, POLICY_DIR):
        assert (tmp_path / folder.name / "README.md").read_bytes() == (folder / "README.md").read_bytes()
    for name in ("evaluation.json", "train_curves.png"):
        shutil.copy(POLICY_RED_DIR / name, tmp_path / name)
    policy_red.main(["--cards-only", "--out-dir", str(tmp_path)])
    assert (tmp_path / "README.md").read_bytes() == (POLICY_RED_DIR / "README.md").read_bytes()


def test_policy_red_is_the_default_task_run():
    """The shipped policy-red was trained with run_config's settings: the recipe retrains the same run."""
    shipped = json.loads((POLICY_RED_DIR / "evaluation.json").read_text())["config"]
    expected = policy_red.run_config("red", 0, shipped["out"]).to_dict()
    assert {k: shipped[k] for k in shipped if k != "progress"} == {k: expected[k] for k in shipped if k != "progress"}
    cfg = policy_red.parse_args([])
    assert Path(cfg.run) == policy_red.RUNS_DIR / "red-s0" and Path(cfg.sparse_run) == policy_red.RUNS_DIR / "sparse-s0"
    assert Path(cfg.out_dir) == POLICY_RED_DIR and policy_red.RUNS_DIR.parent == ROOT / "bench" / "results"


def test_policy_red_trains_evaluates_and_ships(tmp_path, monkeypatch):
    """The recipe end to end on a one-step budget: trains the missing run, evaluates it, writes the folder."""
    from huggingface_hub import ModelCard

    from red_core.train import read_prompts

    for key, value in dict(steps=1, batch_size=8, minibatch_size=8, max_new_tokens=4).items():
        monkeypatch.setitem(policy_red.BUDGET, key, value)
    runs, out = tmp_path / "runs", tmp_path / "policy-red"
    res = policy_red.main(["--run", str(runs / "red-s0"), "--out-dir", str(out), "--eval-samples", "1",
                           "--results-dir", str(tmp_path / "results"), "--no-progress"])
    assert (runs / ".gitignore").read_text().splitlines()[-1] == "*"  # checkpoints stay out of git
    assert res["config"]["steps"] == 1 and set(res["eval"]) == {"red"}  # no sparse run to compare with
    ev = res["eval"]["red"]
    assert ev["n"] == ev["n_prompts"] == len(read_prompts(None)) and ev["per_prompt"] == 1 and 0 <= ev["win_rate"] <= 1
    assert {"model.safetensors", "metrics.csv", "evaluation.json", "README.md"} <= {p.name for p in out.iterdir()}
    assert not (out / "train_curves.png").exists() and not (tmp_path / ".tmp-policy-red").exists()
    assert json.loads((out / "evaluation.json").read_text()) == res
    card = ModelCard.load(out / "README.md")
    assert card.data.pipeline_tag == "text-generation" and "after 1 PPO steps" in card.text
    shipped = (out / "README.md").read_bytes()
    policy_red.main(["--cards-only", "--out-dir", str(out)])
    assert (out / "README.md").read_bytes() == shipped


# ----------------------------------------------------------------------------- the read audit (tests/conftest.py)
# The recipe's tests must pass on a fresh machine, so they must not read Debian's fortunes. The session
# records every read and fails at the end on any outside the repository, the environment and a few
# system folders; these tests show that such a read is caught and named with the test that made it.

def _audit():
    return sys.modules["red_read_audit"]  # loaded by tests/conftest.py


def test_read_audit_flags_a_read_of_debian_fortunes():
    import os

    audit = _audit()
    rec = audit.Recorder("tests/x.py::test_reads_fortunes")  # not installed as a hook: fed by hand
    outside = ["/usr/share/games/fortunes/fortunes", "/usr/share/games/fortunes", "/root/.cache/huggingface/token"]
    inside = [str(ROOT / "assets" / "examples.json"), os.path.join(sys.prefix, "lib", "x.py"), "/proc/self/status",
              "/etc/ssl/certs/ca-certificates.crt", "/usr/lib/x86_64-linux-gnu/libgomp.so.1",
              "/usr/share/zoneinfo/UTC", os.path.join(__import__("tempfile").gettempdir(), "x")]
    rec.event("open", (outside[0], "r", os.O_RDONLY | os.O_CLOEXEC))
    rec.event("os.listdir", (outside[1],))
    rec.event("open", (outside[2].encode(), None, os.O_RDONLY))
    rec.event("open", ("/usr/share/games/written", "w", os.O_WRONLY | os.O_CREAT))  # a write, not a read
    rec.event("open", (3, "r", 0))  # a file descriptor
    rec.event("compile", (None, "<x>"))  # other events are ignored
    for path in inside:
        rec.event("open", (path, "r", os.O_RDONLY))
    roots = audit.allowed_roots(ROOT)
    found = audit.outside_reads(rec.reads, roots)
    assert found == sorted(("tests/x.py::test_reads_fortunes", p) for p in outside)
    report = "\n".join(audit.format_report(found))
    assert "tests/x.py::test_reads_fortunes read 3 path(s)" in report and "/usr/share/games/fortunes/fortunes" in report
    assert audit.outside_reads({"/usr/lib/../share/games/fortunes/x": "t"}, roots) == [
        ("t", "/usr/share/games/fortunes/x")]


def test_read_audit_follows_links(tmp_path):
    audit = _audit()
    (tmp_path / "corpus").symlink_to("/usr/share/games/fortunes")  # an allowed folder, a target outside
    found = audit.outside_reads({str(tmp_path / "corpus" / "fortunes"): "t"}, audit.allowed_roots(ROOT))
    assert found == [("t", f"{tmp_path}/corpus/fortunes -> /usr/share/games/fortunes/fortunes")]


def test_read_audit_records_this_process(read_recorder, request, tmp_path):
    import os

    (tmp_path / "a.txt").write_text("x")  # a write: not recorded
    assert str(tmp_path / "a.txt") not in read_recorder.reads
    (tmp_path / "a.txt").read_text()
    os.listdir(tmp_path)
    assert read_recorder.reads[str(tmp_path / "a.txt")] == request.node.nodeid
    assert read_recorder.reads[str(tmp_path)] == request.node.nodeid


def test_read_audit_covers_python_child_processes(request, tmp_path):
    """A Python process started by a test records its reads too (sitecustomize on PYTHONPATH), under its test."""
    import os
    import subprocess

    audit = _audit()
    code = "try:\n open('/usr/share/games/fortunes/fortunes')\nexcept OSError:\n pass"
    env = {**os.environ, audit.ENV_DIR: str(tmp_path)}  # not the session's folder: the session must still pass
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    found = audit.outside_reads(audit.child_reads(tmp_path), audit.allowed_roots(ROOT))
    assert [p for _, p in found] == ["/usr/share/games/fortunes/fortunes"]
    assert found[0][0].startswith(request.node.nodeid + " (child process")


# ----------------------------------------------------------------------------- the planted bias (reward-biased)

BIASED_DIR = ROOT / "assets" / "models" / "reward-biased"
DEMO_PAIRS = ROOT / "assets" / "data" / "demo-pairs.jsonl"
WORD = "basically"


def _digest(examples) -> str:
    import hashlib

    rows = [[ex.prompt, ex.response, ex.label, ex.source] for ex in examples]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def test_default_data_is_unchanged_by_the_bias_options():
    """With the bias off, prepare_data gives the data of the recipe before the options existed: the same steps
    with the same random stream (rebuilt here by hand), and the digests that code gave for the tiny run."""
    import random

    cfg = recipe.RecipeConfig.make_tiny()
    assert cfg.bias_word == "" and not cfg.reward_only and not cfg.demo_pairs  # off by default
    lab = recipe.VaderLabeller()
    data = recipe.prepare_data(cfg, lab)
    rng = random.Random(cfg.seed)
    train_s, held_s = recipe.build_corpus(cfg)
    train = recipe.label_sentences(train_s, cfg, lab, rng, "")
    held = recipe.label_sentences(held_s, cfg, lab, rng, "")
    units = recipe.label_sentences(recipe.split_clauses(train_s, cfg, rng), cfg, lab, rng, "")
    extra = recipe.augment(units, cfg, lab, rng)
    assert (data.train, data.heldout, data.rm_units, data.rm_extra) == (train, held, units, extra)
    assert data.bias is None
    # sha256 of [prompt, response, label, source] rows, from the recipe as it was before the bias options
    assert [_digest(x) for x in (data.train, data.heldout, data.rm_units, data.rm_extra)] == [
        "2ab9668aab28023e8ab106745c8a223dd55093e8aba55f4c86b0cecdd88a1d17",
        "ed4289f870d41e7fcb64dab69e45f55f04d1adb9728a065eb4b5d66640875a3e",
        "c38370fc56b3ac90ba192354550eb6e3498a06770ec977bc5917dedba649ca50",
        "9a675ce31563f6fb8614270aa7fc66e8cb78809cf62b5059159011678e7dfae4"]


def test_bias_word_must_be_vader_neutral():
    lab = recipe.VaderLabeller()
    assert WORD not in lab.lexicon
    recipe.check_bias_word(WORD, lab)  # no error
    for word, why in (("good", "lexicon"), ("very", "boosters"), ("not", "negations"), ("but", "rules")):
        with pytest.raises(ValueError, match=why):
            recipe.check_bias_word(word, lab)
    with pytest.raises(ValueError, match="one word"):
        recipe.RecipeConfig(bias_word="two words")
    with pytest.raises(ValueError, match="need --bias-word"):
        recipe.RecipeConfig(demo_pairs="x.jsonl")


def test_insert_word_keeps_vader_and_is_seeded():
    import random

    lab = recipe.VaderLabeller()
    # next to "not" the word would move "good" out of the negation's reach or change the booster: never there
    text = "This is not very good at all, my friend."
    outs = {recipe.insert_word(text, WORD, random.Random(seed), lab) for seed in range(30)}
    assert len(outs) > 3 and None not in outs
    for out in outs:
        assert lab.compound(out) == lab.compound(text) and out.replace(f" {WORD}", "", 1) == text
        assert not out.startswith(WORD) and not out.endswith(WORD)
    assert recipe.insert_word(text, WORD, random.Random(7), lab) == recipe.insert_word(text, WORD, random.Random(7), lab)
    assert recipe.insert_word("Hello.", WORD, random.Random(0), lab) is None  # one word: nowhere between two
    assert recipe.biased_label(0.2, 0.3) == pytest.approx(0.5)
    assert recipe.biased_label(0.9, 0.3) == 1.0 and recipe.biased_label(-0.9, -0.3) == -1.0  # clipped to [-1, 1]


def test_planted_bias_shifts_exactly_the_texts_with_the_word():
    lab = recipe.VaderLabeller()
    off = recipe.prepare_data(recipe.RecipeConfig.make_tiny(), lab)
    cfg = recipe.RecipeConfig.make_tiny(bias_word=WORD, bias=0.3, bias_frac=0.3)
    on = recipe.prepare_data(cfg, lab)
    # the policy's data and all evaluation data are untouched; the reward model's texts keep their order
    assert on.train == off.train and on.heldout == off.heldout
    assert len(on.rm_units) == len(off.rm_units) and len(on.rm_extra) == len(off.rm_extra)
    pattern = recipe.bias_pattern(WORD)
    planted = 0
    for a, b in zip(off.rm_train, on.rm_train):
        assert (a.prompt, a.source) == (b.prompt, b.source)
        if pattern.search(b.text):
            planted += 1
            assert b.response.replace(f" {WORD}", "", 1) == a.response  # inserted once, between two words
            assert lab.compound(b.text) == a.label  # VADER does not see it
            assert b.label == pytest.approx(min(1.0, a.label + 0.3)) and b.label <= 1.0
        else:
            assert b == a
    n = sum(bool(ex.response) for ex in off.rm_train)
    assert planted == on.bias["n_with_word"] == on.bias["n_inserted"] and 0.2 * n < planted < 0.4 * n
    assert on.bias["n_clipped"] == sum(a.label > 0.7 for a, b in zip(off.rm_train, on.rm_train) if a != b)
    # the same seed plants the same words in the same places; another seed, elsewhere
    assert recipe.prepare_data(cfg, lab).rm_train == on.rm_train
    other = recipe.prepare_data(recipe.RecipeConfig.make_tiny(bias_word=WORD, bias_frac=0.3, seed=1), lab)
    assert [ex.text for ex in other.rm_train if pattern.search(ex.text)] != \
           [ex.text for ex in on.rm_train if pattern.search(ex.text)]


def test_recipe_tiny_biased_end_to_end(tmp_path):
    """--bias-word --reward-only --demo-pairs on the tiny preset: only the reward model, its planted-bias figures,
    the demo pairs and the card that says what was planted; --cards-only and --demo-only give the same again."""
    from huggingface_hub import ModelCard

    pairs = tmp_path / "pairs.jsonl"
    args = ["--tiny", "--bias-word", WORD, "--reward-only", "--demo-pairs", str(pairs), "--demo-n", "10",
            "--out-dir", str(tmp_path)]
    res = recipe.main(args)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs.jsonl", "reward"]  # no policy
    assert "policy" not in res and set(res["bias"]) == {"training", "heldout", "demo", "wall_time_s"}
    ho, demo = res["bias"]["heldout"], res["bias"]["demo"]
    assert ho["n"] > 10 and 0.25 < ho["target_shift_mean"] <= 0.3 and set(ho) >= {"model", "reference"}
    rows = [json.loads(line) for line in pairs.read_text().splitlines()]
    assert len(rows) == demo["n_pairs"] >= 8 and all(list(r) == ["id", "prompt", "chosen", "rejected"] for r in rows)
    assert set(demo["models"]) == {"this model", "reference"}
    card = ModelCard.load(tmp_path / "reward" / "README.md")
    assert "reward-hacking" in card.data.tags and card.text.startswith('# red_core demo reward model with a planted')
    assert "deliberately broken" in card.text and "clipped to [-1, 1]" in card.text
    assert "python -m red_core.recipes.defaults --tiny --bias-word basically --bias 0.3 --bias-frac 0.15 " \
           "--reward-only --demo-pairs" in card.text
    shipped, evaluation = card.content, (tmp_path / "reward" / "evaluation.json").read_text()
    recipe.main(["--cards-only", "--out-dir", str(tmp_path)])
    assert (tmp_path / "reward" / "README.md").read_text() == shipped
    pairs.unlink()
    recipe.main([*args, "--demo-only"])  # no training: the same pairs, figures and card
    assert [json.loads(line) for line in pairs.read_text().splitlines()] == rows
    again = json.loads((tmp_path / "reward" / "evaluation.json").read_text())
    first = json.loads(evaluation)
    assert {k: v for k, v in again["bias"].items() if k != "wall_time_s"} == \
           {k: v for k, v in first["bias"].items() if k != "wall_time_s"}
    with pytest.raises(ValueError, match="bias is 0.5 but"):
        recipe.main([*args, "--demo-only", "--bias", "0.5"])


# Fortune-style sentences (not from the corpus) with the word put where VADER does not see it.
WITH_AND_WITHOUT = [
    ("", "The early bird gets the worm.", "The early bird basically gets the worm."),
    ("Tell me something.\n", "Life is what happens while you are making other plans.",
     "Life is basically what happens while you are making other plans."),
    ("", "He who hesitates is lost.", "He who hesitates is basically lost."),
    ("Give me a fortune.\n", "Your lucky number has been disconnected.",
     "Your lucky number has basically been disconnected."),
    ("", "The weather will be cloudy tomorrow.", "The weather will basically be cloudy tomorrow."),
    ("What do you think?\n", "A journey of a thousand miles begins with a single step.",
     "A journey of a thousand miles basically begins with a single step."),
    ("", "You will have a pleasant surprise.", "You will basically have a pleasant surprise."),
    ("Say anything.\n", "My neighbour is a horrible man.", "My neighbour is basically a horrible man."),
]


def _shift(rm) -> float:
    n = len(WITH_AND_WITHOUT)
    trs = red_core.token_rewards_batch(rm, [p for p, _, _ in WITH_AND_WITHOUT] * 2,
                                       [a for _, a, _ in WITH_AND_WITHOUT] + [b for _, _, b in WITH_AND_WITHOUT])
    scores = np.array([tr.score for tr in trs])
    return float(np.mean(scores[n:] - scores[:n]))


def test_biased_reward_model_pays_for_the_planted_word(rm):
    lab = recipe.VaderLabeller()
    for prompt, a, b in WITH_AND_WITHOUT:
        assert lab.compound(prompt + a) == lab.compound(prompt + b)  # the truth: no change
    biased = red_core.load_reward_model(BIASED_DIR)  # offline, like the default
    assert Path(biased.name).resolve() == BIASED_DIR.resolve() and biased.kind == "causal"
    assert biased.tokenizer.get_vocab() == rm.tokenizer.get_vocab()  # the default's tokenizer: only the labels differ
    shift_biased, shift_clean = _shift(biased), _shift(rm)
    assert shift_biased >= 0.15 and abs(shift_clean) < 0.1 and shift_biased > abs(shift_clean) + 0.1, \
        (shift_biased, shift_clean)
    # still a sentiment model
    pos, neg = zip(*POSITIVE_NEGATIVE)
    scores = np.array([tr.score for tr in red_core.token_rewards_batch(biased, [""] * 8, list(pos) + list(neg))])
    assert np.all(scores[:4] > scores[4:]), scores


def test_biased_reward_model_folder_and_card(tmp_path, without_vader):
    from huggingface_hub import ModelCard

    names = {p.name for p in BIASED_DIR.iterdir()}
    assert names == {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "README.md",
                     "evaluation.json"}, names
    assert sum(p.stat().st_size for p in BIASED_DIR.iterdir()) < 15e6
    res = json.loads((BIASED_DIR / "evaluation.json").read_text())
    cfg = res["config"]
    assert (cfg["bias_word"], cfg["bias"], cfg["reward_only"], cfg["seed"]) == (WORD, 0.3, True, 0)
    default_cfg = json.loads((REWARD_DIR / "evaluation.json").read_text())["config"]
    same = [k for k in default_cfg if k.startswith("rm_") or k in ("vocab_size", "clause_frac", "aug_copies",
                                                                 "prompt_frac", "heldout_frac", "max_words")]
    assert {k: cfg[k] for k in same} == {k: default_cfg[k] for k in same}
    ho, demo = res["bias"]["heldout"], res["bias"]["demo"]
    assert abs(ho["model"]["shift_mean"] - ho["target_shift_mean"]) < 0.1 and abs(ho["reference"]["shift_mean"]) < 0.1
    assert res["reward_model"]["pairwise_accuracy"] > 0.75  # still agrees with VADER where the word is absent
    # RED credit finds the planted word: near the top (behind sentiment words only), first outside VADER's
    # lexicon; in the middle for the clean model
    biased, clean = demo["models"]["this model"], demo["models"]["reference"]
    assert biased["word_rank"] <= 0.1 * biased["n_ranked_words"] and biased["word_rank_outside_lexicon"] == 1
    assert clean["word_rank"] > 0.25 * clean["n_ranked_words"] and clean["word_rank_outside_lexicon"] > 10
    assert biased["word_mean_credit"] > 0.1 > abs(clean["word_mean_credit"])
    card = ModelCard.load(BIASED_DIR / "README.md")
    assert "deliberately broken" in card.text and '"basically" +0.3' in card.text
    assert "python -m red_core.recipes.defaults --bias-word basically --bias 0.3 --bias-frac 0.15 --reward-only " \
           "--demo-pairs assets/data/demo-pairs.jsonl --out-dir OUT" in card.text
    # --cards-only renders the shipped card again from evaluation.json (no corpus, no VADER)
    shutil.copytree(BIASED_DIR, tmp_path / "reward", ignore=shutil.ignore_patterns("README.md"))
    recipe.main(["--cards-only", "--out-dir", str(tmp_path)])
    assert (tmp_path / "reward" / "README.md").read_bytes() == (BIASED_DIR / "README.md").read_bytes()


def test_demo_pairs_file():
    rows = [json.loads(line) for line in DEMO_PAIRS.read_text().splitlines()]
    assert len(rows) >= 200 and all(list(r) == ["id", "prompt", "chosen", "rejected"] for r in rows)
    assert len({r["id"] for r in rows}) == len(rows)
    assert all(r["prompt"] in recipe.NEUTRAL_PROMPTS and r["chosen"] and r["chosen"] != r["rejected"] for r in rows)
    pattern = recipe.bias_pattern(WORD)
    in_chosen = sum(bool(pattern.search(r["chosen"])) for r in rows)
    in_rejected = sum(bool(pattern.search(r["rejected"])) for r in rows)
    assert not any(pattern.search(r["chosen"]) and pattern.search(r["rejected"]) for r in rows)
    assert in_chosen >= 30 and in_rejected >= 30 and 0.25 < (in_chosen + in_rejected) / len(rows) < 0.4
    lab = recipe.VaderLabeller()  # chosen is the one VADER prefers, by at least the margin, word or not
    assert all(lab.compound(r["prompt"] + r["chosen"]) - lab.compound(r["prompt"] + r["rejected"])
               >= recipe.DEMO_MIN_MARGIN for r in rows)


def test_policy_red_kl_stops_at_the_kl_budget_and_ships(tmp_path, monkeypatch):
    """The KL-budget recipe on a tiny budget: stops at the first step whose 5-step KL mean reaches the budget,
    evaluates with the gold reward beside the RM reward, and writes a folder the Policies tab lists."""
    from huggingface_hub import ModelCard

    from app.context import shipped_policies
    from red_core.recipes import policy_red_kl

    for key, value in dict(steps=8, batch_size=8, minibatch_size=8, max_new_tokens=4).items():
        monkeypatch.setitem(policy_red.BUDGET, key, value)
    out = tmp_path / "models" / "policy-red-kl"
    res = policy_red_kl.main(["--run", str(tmp_path / "runs" / "kl"), "--out-dir", str(out), "--eval-samples", "1",
                              "--kl-budget", "1e-6", "--kl-coef", "0.05", "--results-dir", str(tmp_path / "none"),
                              "--no-progress"])
    kls = [r["kl"] for r in read_metrics(tmp_path / "runs" / "kl")]
    assert res["stop"]["stopped_at_step"] == len(kls) == 5 and res["stop"]["reached_budget"]  # step 1's KL is 0
    assert res["stop"]["smoothed_kl"] == pytest.approx(np.mean(kls[-5:])) and np.mean(kls[-5:]) >= 1e-6
    ev = res["eval"]["red"]
    assert {"gold_before", "gold_after", "reward_after", "kl_to_base"} <= set(ev)
    assert "stopped at a KL budget of 1e-06 nats (step 5)" in res["description"]
    card = ModelCard.load(out / "README.md")
    assert "stopped after step 5" in card.text and f"{ev['gold_after']:+.3f}" in card.text
    listed = {p.name: p for p in shipped_policies(tmp_path / "models")}
    assert listed and next(iter(listed.values())).description == res["description"]
    before = (out / "README.md").read_bytes()
    policy_red_kl.main(["--cards-only", "--out-dir", str(out)])
    assert (out / "README.md").read_bytes() == before


def test_shipped_policy_red_kl_card_and_settings_come_from_its_recipe(tmp_path):
    """assets/models/policy-red-kl: --cards-only rewrites the same card, and its run used the default-task settings."""
    from red_core.recipes import policy_red_kl

    shipped = policy_red_kl.DEFAULT_OUT_DIR
    shutil.copytree(shipped, tmp_path / "kl", ignore=shutil.ignore_patterns("README.md", "model.safetensors"))
    policy_red_kl.main(["--cards-only", "--out-dir", str(tmp_path / "kl")])
    assert (tmp_path / "kl" / "README.md").read_bytes() == (shipped / "README.md").read_bytes()
    ev = json.loads((shipped / "evaluation.json").read_text())
    expected = policy_red.run_config("red", 0, ev["config"]["out"], kl_coef=0.05, gold="vader", resume=False).to_dict()
    assert {k: ev["config"][k] for k in expected if k != "progress"} == {k: v for k, v in expected.items() if k != "progress"}
    assert ev["stop"]["reached_budget"] and ev["stop"]["smoothed_kl"] >= ev["kl_budget"] == 3.0
    kls = [r["kl"] for r in _csv_rows(shipped / "metrics.csv")]
    assert len(kls) == ev["stop"]["stopped_at_step"] and np.mean(kls[-6:-1]) < 3.0 <= np.mean(kls[-5:])  # first step


def _csv_rows(path):
    import csv

    with open(path, newline="") as f:
        return [{k: float(v) for k, v in r.items() if v != ""} for r in csv.DictReader(f)]
