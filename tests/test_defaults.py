"""The offline default models (assets/models) and the recipe that builds them (red_core.recipes.defaults).

Behavioural checks that a broken, retrained-wrong or swapped model would fail, plus a tiny end-to-end
run of the recipe. The whole file takes well under 30 s on 2 CPU cores.
"""

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import red_core  # noqa: E402
from red_core.recipes import defaults as recipe  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REWARD_DIR = ROOT / "assets" / "models" / "reward"
POLICY_DIR = ROOT / "assets" / "models" / "policy-base"


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


def test_recipe_tiny_end_to_end(tmp_path):
    t0 = time.time()
    cfg = recipe.RecipeConfig.make_tiny(out_dir=str(tmp_path))
    res = recipe.build(cfg)
    assert time.time() - t0 < 60  # ~5 s on an idle 2-core machine; the bound only catches a non-tiny run
    for sub in ("reward", "policy-base"):
        assert (tmp_path / sub / "model.safetensors").exists() and (tmp_path / sub / "README.md").exists()
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


# ----------------------------------------------------------------------------- the read audit (tests/conftest.py)
# The recipe's tests must pass on a fresh machine, so they must not read Debian's fortunes. The session
# records every read and fails at the end on any outside the repository, the environment and a few
# system folders; these tests show that such a read is caught and named with the test that made it.

def _audit():
    import sys

    return sys.modules["red_read_audit"]  # loaded by tests/conftest.py


def test_read_audit_flags_a_read_of_debian_fortunes():
    import os
    import sys

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
    import sys

    audit = _audit()
    code = "try:\n open('/usr/share/games/fortunes/fortunes')\nexcept OSError:\n pass"
    env = {**os.environ, audit.ENV_DIR: str(tmp_path)}  # not the session's folder: the session must still pass
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    found = audit.outside_reads(audit.child_reads(tmp_path), audit.allowed_roots(ROOT))
    assert [p for _, p in found] == ["/usr/share/games/fortunes/fortunes"]
    assert found[0][0].startswith(request.node.nodeid + " (child process")
