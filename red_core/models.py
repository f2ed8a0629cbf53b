"""Load reward models safely and turn (prompt, response) into the exact token ids they score.

Two jobs live here, because they share one contract (see README "Input formatting"):

1. `load_reward_model(name_or_path)`: any Hugging Face `...ForSequenceClassification` reward model
   (causal or encoder) from a hub id or a local folder. Safe by default: safetensors only and
   `trust_remote_code=False` unless the caller opts in. Every failure says what to do.
2. `encode(rm, prompt, response)`: format the pair the way the RM expects and record which tokens
   belong to the response, with character offsets into `response`.

Formatting contract:
- The RM's tokenizer has a chat template (and `use_chat_template` is on): the RM sees
  [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}] through it.
  Template tokens after the response (end-of-turn, EOS) are scored tokens marked `special`.
- Otherwise (`input_format="concat"`) the RM sees `prompt + response` exactly as given, plus the
  tokenizer's own special tokens (BOS/CLS/SEP); `input_format="pair"` uses the tokenizer's text-pair
  form (question/answer encoders such as the OpenAssistant DeBERTa RMs).
- Tokens before the first response token form the prompt-only input whose score is R(x, ∅).
- Encoders see the future, so the tokens the tokenizer appends after the response ([SEP]) are a
  fixed tail appended to every prefix; causal RMs score those tail tokens like any other.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import cast

import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer
from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES

from red_core.records import Encoding, RewardModel, RewardModelError
from red_core.scoring import detect_kind

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REWARD_MODEL = REPO_ROOT / "assets" / "models" / "reward"
DEFAULT_POLICY = REPO_ROOT / "assets" / "models" / "policy-base"
EXAMPLE_REWARD_MODELS = "Skywork/Skywork-Reward-V2-Qwen3-0.6B (causal) or OpenAssistant/reward-model-deberta-v3-large-v2 (encoder)"
INPUT_FORMATS = ("auto", "concat", "pair")


# ----------------------------------------------------------------------------- loading


def _resolve_dtype(dtype, device: str):
    if dtype is None or dtype == "auto":
        return torch.float32 if device == "cpu" else "auto"
    if isinstance(dtype, torch.dtype):
        return dtype
    names = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16,
             "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
    if dtype not in names:
        raise RewardModelError(f"unknown dtype {dtype!r}; use one of {sorted(names)} or 'auto'")
    return names[dtype]


def set_threads(n: int) -> None:
    """Torch threads for this process (CPU inference); a server with several workers gives each a share."""
    torch.set_num_threads(max(1, int(n)))


def resolve_device(device: str | None) -> str:
    """'auto'/None -> 'cuda' when a GPU is present, else 'cpu'."""
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RewardModelError(f"device {device!r} asked for, but no CUDA GPU is visible; use --device cpu")
    return device


def _not_found_message(name: str, err: Exception) -> str:
    from huggingface_hub.constants import is_offline_mode

    if is_offline_mode():
        return (f"could not load {name!r}: it is not a local folder and offline mode is on "
                f"(HF_HUB_OFFLINE=1), so the Hugging Face Hub was not asked. Pass a local folder, or "
                f"unset HF_HUB_OFFLINE on a machine with network access. ({type(err).__name__}: {err})")
    return (f"could not load {name!r}: it is neither a local folder nor a model id we could fetch from "
            f"the Hugging Face Hub. Check the spelling, your network, and `hf auth login` for gated "
            f"models. ({type(err).__name__}: {err})")


def _looks_like_path(name: str) -> bool:
    """Hub ids are "name" or "org/name"; anything else with slashes, or starting with . / ~, is a folder."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or (os.sep != "/" and os.sep in name)


def _check_folder(name: str) -> None:
    """A local folder must look like a saved model: say which file is missing or broken, and where."""
    if not os.path.isdir(name):
        if os.path.exists(name):
            raise RewardModelError(f"{name!r} is a file, not a model folder. Pass the folder that holds config.json, "
                                   f"the tokenizer files and model.safetensors.")
        if _looks_like_path(name):
            raise RewardModelError(f"folder {name!r} not found. Pass an existing model folder, or a hub id such as "
                                   f"{EXAMPLE_REWARD_MODELS.split(' ')[0]}.")
        return  # a hub id
    config = Path(name) / "config.json"
    if not config.is_file():
        raise RewardModelError(f"folder {name!r} has no config.json, so it is not a saved Hugging Face model. Pass the "
                               f"folder that `save_pretrained` wrote (config.json, tokenizer files, model.safetensors).")
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise RewardModelError(f"{config} is not valid JSON ({err}); the model folder is damaged. Re-save or "
                               f"re-download the model.") from err
    if not isinstance(data, dict):
        raise RewardModelError(f"{config} holds a JSON {type(data).__name__}, not a model config (a JSON object); "
                               f"the model folder is damaged. Re-save or re-download the model.")


def _check_weight_files(name: str, allow_pickle: bool) -> None:
    """In a local folder: weights exist, and are safetensors unless the caller allows pickle."""
    if not os.path.isdir(name):
        return
    files = os.listdir(name)
    if any(f.endswith(".safetensors") for f in files):
        return
    pickles = sorted(f for f in files if f.endswith((".bin", ".pt", ".pth", ".ckpt")))
    if not pickles:
        raise RewardModelError(f"folder {name!r} has no weights file (model.safetensors, or sharded "
                               f"model-*.safetensors); only: {', '.join(sorted(files)[:8]) or 'nothing'}. "
                               f"Save the model with `model.save_pretrained(folder)`.")
    if not allow_pickle:
        raise RewardModelError(
            f"{name!r} has no safetensors weights, only pickle files ({', '.join(pickles[:3])}), which can run code "
            f"when loaded. If you trust the source, pass allow_pickle=True (--allow-pickle).")


def _load_config(name: str, trust_remote_code: bool):
    _check_folder(name)
    try:
        return AutoConfig.from_pretrained(name, trust_remote_code=trust_remote_code)
    except ValueError as err:
        if "trust_remote_code" in str(err):
            raise RewardModelError(
                f"{name!r} needs custom code from its repository to load. That code runs on your machine; "
                f"if you trust its authors, pass trust_remote_code=True (--trust-remote-code).") from err
        if os.path.isdir(name):
            raise RewardModelError(f"the config.json of folder {name!r} could not be used ({err}). Re-save or "
                                   f"re-download the model.") from err
        raise RewardModelError(_not_found_message(name, err)) from err
    except OSError as err:
        if os.path.isdir(name):
            raise RewardModelError(f"could not read the config of folder {name!r}: {err}") from err
        raise RewardModelError(_not_found_message(name, err)) from err


def _check_remote_code(name: str, config, trust_remote_code: bool) -> None:
    custom = (getattr(config, "auto_map", None) or {}).get("AutoModelForSequenceClassification")
    if custom and not trust_remote_code:
        raise RewardModelError(
            f"{name!r} ships its own model code ({custom}); the built-in class could give wrong scores, and its "
            f"code runs on your machine. If you trust its authors, pass trust_remote_code=True (--trust-remote-code).")


def _check_head(name: str, config) -> None:
    archs = list(getattr(config, "architectures", None) or [])
    has_cls_arch = any(a.endswith("ForSequenceClassification") for a in archs)
    if archs and not has_cls_arch:
        raise RewardModelError(
            f"{name!r} has no sequence-classification head (architectures: {', '.join(archs)}); it is not a "
            f"reward model. Pass a reward model, e.g. {EXAMPLE_REWARD_MODELS}.")
    if not archs and config.model_type not in MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES and not getattr(config, "auto_map", None):
        raise RewardModelError(f"{name!r} (model type {config.model_type!r}) has no sequence-classification "
                               f"class in transformers; pass a reward model, e.g. {EXAMPLE_REWARD_MODELS}.")


def _check_labels(name: str, config, label_index: int | None) -> int:
    n = int(getattr(config, "num_labels", 1))
    if label_index is None:
        if n == 1:
            return 0
        labels = ", ".join(f"{i}={config.id2label.get(i, i)}" for i in range(n))
        raise RewardModelError(
            f"{name!r} has {n} outputs ({labels}); RED needs one scalar. Choose the output that is the reward "
            f"with label_index=I (--label-index I), e.g. the POSITIVE logit of a sentiment classifier.")
    if not 0 <= label_index < n:
        raise RewardModelError(f"label_index={label_index} is out of range: {name!r} has {n} output(s)")
    return label_index


def _weights_error(name: str, err: Exception) -> RewardModelError:
    """A weights file that exists but cannot be read (truncated download, disk error): name it."""
    files = sorted(Path(name).glob("*.safetensors")) if os.path.isdir(name) else []
    where = ", ".join(str(f) for f in files[:3]) or name
    return RewardModelError(f"the weights of {name!r} could not be read ({where}: {type(err).__name__}: {err}). The "
                            f"file is damaged or incomplete (e.g. an interrupted download); re-download or re-save it.")


def _from_pretrained(loader, name: str, *, allow_pickle: bool, **kw):
    """`loader.from_pretrained` with the safety switches and errors that name the broken file."""
    from safetensors import SafetensorError

    _check_weight_files(name, allow_pickle)
    try:
        return loader.from_pretrained(name, use_safetensors=None if allow_pickle else True, **kw)
    except SafetensorError as err:
        raise _weights_error(name, err) from err
    except OSError as err:
        text = str(err)
        if os.path.isdir(name):
            raise _weights_error(name, err) from err
        if not allow_pickle and ("safetensors" in text or ".bin" in text or "pytorch_model" in text):
            raise RewardModelError(
                f"{name!r} has no safetensors weights, only pickle files (.bin), which can run code when "
                f"loaded. If you trust the source, pass allow_pickle=True (--allow-pickle).") from err
        raise RewardModelError(_not_found_message(name, err)) from err


def _load_tokenizer(name: str, trust_remote_code: bool):
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, trust_remote_code=trust_remote_code)
    except Exception as err:  # noqa: BLE001 - tokenizers raise many kinds; each becomes one clear message
        if os.path.isdir(name):
            raise RewardModelError(f"the tokenizer in folder {name!r} could not be loaded ({type(err).__name__}: "
                                   f"{err}). The folder needs tokenizer.json (a fast tokenizer) and "
                                   f"tokenizer_config.json, as `tokenizer.save_pretrained(folder)` writes.") from err
        raise RewardModelError(_not_found_message(name, err)) from err
    if tokenizer is None or isinstance(tokenizer, bool):
        raise RewardModelError(f"no tokenizer found for {name!r}; save one beside the model "
                               f"(`tokenizer.save_pretrained(folder)`).")
    return tokenizer


def _load_weights(name: str, *, allow_pickle: bool, trust_remote_code: bool, dtype, device: str):
    model, info = _from_pretrained(AutoModelForSequenceClassification, name, allow_pickle=allow_pickle,
                                   trust_remote_code=trust_remote_code, dtype=dtype, output_loading_info=True)
    head_missing = [k for k in info.get("missing_keys", []) if k.split(".")[0] in ("score", "classifier", "pre_classifier", "pooler")]
    if head_missing:
        raise RewardModelError(
            f"{name!r} has no trained sequence-classification head (missing weights: {', '.join(sorted(head_missing)[:4])}); "
            f"loading it would give random scores. Pass a reward model, e.g. {EXAMPLE_REWARD_MODELS}.")
    return model.to(device).eval()


def _setup_padding(name: str, model, tokenizer, warnings: list[str]) -> None:
    """Make sure tokenizer and config agree on a pad token; say so when we had to choose one."""
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token_id is not None:
            tokenizer.pad_token = tokenizer.eos_token
            warnings.append(f"the tokenizer had no pad token; using EOS ({tokenizer.eos_token!r}) as pad.")
        elif tokenizer.unk_token_id is not None:
            tokenizer.pad_token = tokenizer.unk_token
            warnings.append(f"the tokenizer had no pad token; using UNK ({tokenizer.unk_token!r}) as pad.")
        else:
            raise RewardModelError(f"the tokenizer of {name!r} has no pad, EOS or UNK token to pad with; "
                                   f"set tokenizer.pad_token before scoring.")
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    pad, eos = model.config.pad_token_id, tokenizer.eos_token_id
    if pad is not None and pad == eos:
        warnings.append(
            "pad_token_id equals eos_token_id: like transformers, the model scores a text ending in EOS at "
            "the token before it, so EOS tokens get the previous prefix score and 0 reward.")


def _max_length(model, tokenizer) -> int:
    lengths = [getattr(model.config, "max_position_embeddings", None), getattr(model.config, "n_positions", None)]
    tml = getattr(tokenizer, "model_max_length", None)
    if tml and tml < 1_000_000:
        lengths.append(tml)
    known: list[int] = [n for n in lengths if n]
    return int(min(known)) if known else 2048


def load_reward_model(name_or_path: str | os.PathLike | None = None, *, device: str | None = None, dtype=None,
                      label_index: int | None = None, allow_pickle: bool = False, trust_remote_code: bool = False,
                      input_format: str = "auto") -> RewardModel:
    """Load a sequence reward model and its tokenizer, from a hub id or a local folder.

    With no name, loads the offline default in assets/models/reward. `dtype` defaults to float32 on
    CPU and to the checkpoint's dtype on GPU. `input_format`: "auto" (chat template when the
    tokenizer has one, else prompt + response), "concat" (never the template) or "pair".
    """
    if input_format not in INPUT_FORMATS:
        raise RewardModelError(f"input_format must be one of {INPUT_FORMATS}, got {input_format!r}")
    if name_or_path is None:
        if not (DEFAULT_REWARD_MODEL / "config.json").exists():
            raise RewardModelError(
                f"no default reward model in {DEFAULT_REWARD_MODEL}. Build it with "
                f"`python -m red_core.recipes.defaults`, or pass a hub id or folder, e.g. {EXAMPLE_REWARD_MODELS}.")
        name_or_path = DEFAULT_REWARD_MODEL
    name = os.path.expanduser(str(name_or_path))
    device = resolve_device(device)
    warnings: list[str] = []
    config = _load_config(name, trust_remote_code)
    _check_remote_code(name, config, trust_remote_code)
    _check_head(name, config)
    label_index = _check_labels(name, config, label_index)
    tokenizer = _load_tokenizer(name, trust_remote_code)
    if not getattr(tokenizer, "is_fast", False):
        raise RewardModelError(f"{name!r} has only a slow tokenizer; RED needs character offsets, which only "
                               f"fast tokenizers give. Install `tokenizers` / convert the tokenizer.")
    model = _load_weights(name, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code,
                          dtype=_resolve_dtype(dtype, device), device=device)
    _setup_padding(name, model, tokenizer, warnings)
    rm = RewardModel(model=model, tokenizer=tokenizer, name=name, kind="encoder", label_index=label_index,
                     input_format=input_format, max_length=_max_length(model, tokenizer), warnings=warnings)
    rm.kind = detect_kind(rm)
    if input_format == "pair" and rm.kind == "causal":
        warnings.append("input_format='pair' on a causal RM: the tokenizer's pair form is used as is.")
    return rm


def load_policy(name_or_path: str | os.PathLike | None = None, *, device: str | None = None, dtype=None,
                allow_pickle: bool = False, trust_remote_code: bool = False):
    """Load a causal-LM policy and its tokenizer (default: assets/models/policy-base), safely."""
    from transformers import AutoModelForCausalLM

    name = os.path.expanduser(str(name_or_path or DEFAULT_POLICY))
    if name_or_path is None and not (DEFAULT_POLICY / "config.json").exists():
        raise RewardModelError(f"no default policy in {DEFAULT_POLICY}; build it with "
                               f"`python -m red_core.recipes.defaults`, or pass a hub id or folder.")
    device = resolve_device(device)
    config = _load_config(name, trust_remote_code)
    archs = list(getattr(config, "architectures", None) or [])
    if archs and not any(a.endswith(("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")) for a in archs):
        raise RewardModelError(f"{name!r} is not a causal language model (architectures: {', '.join(archs)}); "
                               f"pass a policy such as gpt2 or Qwen/Qwen3-0.6B.")
    tokenizer = _load_tokenizer(name, trust_remote_code)
    model = _from_pretrained(AutoModelForCausalLM, name, allow_pickle=allow_pickle,
                             trust_remote_code=trust_remote_code, dtype=_resolve_dtype(dtype, device))
    if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.to(device).eval(), tokenizer


# ----------------------------------------------------------------------------- formatting


def _partition(spans: list[tuple[int, int]], n_chars: int) -> list[tuple[int, int]]:
    """Make token spans tile [0, n_chars) exactly: gaps go to the next token, overlaps to the first.

    Byte-level tokenizers give overlapping spans (one emoji split over several tokens) and some
    tokenizers leave whitespace out of every span; display and word grouping need a partition.
    """
    out, prev_end = [], 0
    for _, e in spans:
        s = prev_end
        e = min(max(e, s), n_chars)
        out.append((s, e))
        prev_end = e
    if out:
        out[-1] = (out[-1][0], n_chars)
    return out


def _render_chat(tokenizer, prompt: str, response: str) -> str:
    """The chat template applied to one user turn and one assistant turn; template failures made clear."""
    from jinja2 import TemplateError

    messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False)
    except (TemplateError, TypeError, ValueError, KeyError, IndexError) as err:
        raise RewardModelError(
            f"the reward model's chat template failed ({type(err).__name__}: {err}). A template the sandbox stops or "
            f"that raises cannot be used; score without it (input_format='concat', --no-chat-template).") from err
    if not isinstance(text, str):
        raise RewardModelError(f"the chat template returned {type(text).__name__}, not text; use input_format='concat'.")
    return text


def _sentinel(*texts: str) -> str:
    """A marker that occurs in none of `texts` (private-use characters, so no real text has them)."""
    n = 0
    while any(f"\ue000RED{n}\ue001" in t for t in texts):
        n += 1
    return f"\ue000RED{n}\ue001"


def _format_text(rm: RewardModel, prompt: str, response: str) -> tuple[str, int]:
    """The text the RM sees and the character index where `response` starts in it.

    With a chat template the response is located by construction, never by searching (a response
    such as "end" also occurs in "<|im_end|>"): the conversation is rendered once with a unique
    marker as the assistant's content, which splits the template into head + marker + tail; the
    real text must then be exactly head + response + tail, or the template rewrote the response.
    """
    if not rm.uses_chat_template:
        return prompt + response, len(prompt)
    marker = _sentinel(prompt, response)
    marked = _render_chat(rm.tokenizer, prompt, marker)
    if marked.count(marker) != 1:
        raise RewardModelError(
            f"the reward model's chat template shows the assistant's text {marked.count(marker)} times (expected once), "
            f"so the response tokens cannot be told apart; score with input_format='concat' (--no-chat-template).")
    head, tail = marked.split(marker)
    text = _render_chat(rm.tokenizer, prompt, response)
    if text != head + response + tail:
        how = ("strips whitespace around it: pass the response without leading/trailing whitespace"
               if text == head + response.strip() + tail else "changes it (some templates drop reasoning or rewrite "
               "content)")
        raise RewardModelError(f"the reward model's chat template does not show the response as given: it {how}. "
                               f"Scoring would credit a different text; or score with input_format='concat'.")
    return text, len(head)


def check_text(what: str, text: str) -> None:
    """Text must be valid Unicode: a lone surrogate (e.g. from a JSON "\\ud800" escape) cannot be tokenised."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise RewardModelError(
            f"the {what} contains an invalid character (lone surrogate U+{ord(text[err.start]):04X} at character "
            f"{err.start}), which is not valid Unicode text. Remove it, or decode the input with errors='replace'.") from None


def _check_vocabulary(rm: RewardModel, ids: list[int]) -> None:
    """Every id must have an embedding: a tokenizer that adds tokens the model lacks would crash the forward pass."""
    embeddings = rm.model.get_input_embeddings()
    n = getattr(embeddings, "num_embeddings", None)
    bad = sorted({i for i in ids if n is not None and i >= n})
    if bad:
        names = ", ".join(repr(rm.tokenizer.convert_ids_to_tokens(i)) for i in bad[:3])
        raise RewardModelError(f"the tokenizer of {rm.name!r} made token id(s) {bad[:3]} ({names}) but the model has "
                               f"only {n} embeddings: tokenizer and model do not match. Use the tokenizer saved with "
                               f"the model, or avoid those special tokens in the text or chat template.")


def encode(rm: RewardModel, prompt: str, response: str) -> Encoding:
    """Tokenise one pair exactly as the RM will see it; mark the response tokens (see module doc)."""
    if not isinstance(prompt, str) or not isinstance(response, str):
        raise RewardModelError(f"prompt and response must be strings, got {type(prompt).__name__} and {type(response).__name__}")
    if not response:
        raise RewardModelError("the response is empty: there are no tokens to give rewards to.")
    for what, value in (("prompt", prompt), ("response", response)):
        check_text(what, value)
    tok = rm.tokenizer
    if rm.input_format == "pair":
        enc = tok(prompt, response, return_offsets_mapping=True, return_special_tokens_mask=True, verbose=False)
        seq_ids = enc.sequence_ids()
        in_resp = [s == 1 for s in seq_ids]
        spans = [tuple(o) for o in enc["offset_mapping"]]
        resp_lo = 0
        text = response
    else:
        text, resp_lo = _format_text(rm, prompt, response)
        enc = tok(text, add_special_tokens=not rm.uses_chat_template, return_offsets_mapping=True,
                  return_special_tokens_mask=True, verbose=False)  # we truncate ourselves, with a warning
        spans = [tuple(o) for o in enc["offset_mapping"]]
        added = enc["special_tokens_mask"]
        resp_hi = resp_lo + len(response)
        in_resp = [not added[i] and e > resp_lo and s < resp_hi and e > s for i, (s, e) in enumerate(spans)]
    ids = list(enc["input_ids"])
    type_ids = list(enc["token_type_ids"]) if "token_type_ids" in enc and rm.input_format == "pair" else None
    _check_vocabulary(rm, ids)
    resp_idx = [i for i, f in enumerate(in_resp) if f]
    if not resp_idx:
        raise RewardModelError("no token of the response survived tokenisation; check the text.")
    first, last = resp_idx[0], resp_idx[-1]
    stop = len(ids) if rm.kind == "causal" else last + 1
    # Response tokens: spans into `response`, tiled so that they round-trip the text exactly.
    rel = [(max(s - resp_lo, 0), max(e - resp_lo, 0)) for s, e in spans[first:last + 1]]
    offsets = _partition(rel, len(response))
    texts = [response[s:e] for s, e in offsets]
    special = [False] * len(offsets)
    # Tail tokens a causal RM scores (end-of-turn, EOS): special, zero-width at the end of the response.
    for i in range(last + 1, stop):
        s, e = spans[i]
        # convert_ids_to_tokens of one id is a str
        texts.append(text[s:e] if e > s and rm.input_format != "pair" else cast(str, tok.convert_ids_to_tokens(ids[i])))
        offsets.append((len(response), len(response)))
        special.append(True)
    warnings = []
    if len(ids) > rm.max_length:
        if first >= rm.max_length - (len(ids) - stop):
            raise RewardModelError(f"the prompt alone is {first} tokens; {rm.name!r} takes at most {rm.max_length}. "
                                   f"Shorten the prompt.")
        tail = ids[stop:]
        keep = rm.max_length - len(tail) - first  # scored tokens that fit
        cut = (stop - first) - keep
        warnings.append(f"input is {len(ids)} tokens but the model takes at most {rm.max_length}: the last {cut} "
                        f"token(s) were cut; they get no reward and R(x, y) is the score of the cut text.")
        ids = ids[:first + keep] + tail
        if type_ids is not None:
            type_ids = type_ids[:first + keep] + type_ids[stop:]
        offsets, special, texts = offsets[:keep], special[:keep], texts[:keep]
        stop = first + keep
    return Encoding(ids=ids, start=first, stop=stop, offsets=offsets, special=special, texts=texts,
                    token_type_ids=type_ids, warnings=warnings)


def encode_ids(rm: RewardModel, prompt_ids: list[int], response_ids: list[int],
               response_offsets: list[tuple[int, int]] | None = None, response_text: str = "") -> Encoding:
    """An Encoding from token ids already in the RM's vocabulary (a policy sharing its tokenizer).

    No re-tokenisation: the RM scores exactly these ids, prompt first. Offsets are optional.
    """
    if not response_ids:
        raise RewardModelError("the response has no tokens")
    ids = list(prompt_ids) + list(response_ids)
    n = len(response_ids)
    offsets = list(response_offsets) if response_offsets is not None else [(0, 0)] * n
    texts = ([response_text[s:e] for s, e in offsets] if response_text
             else [cast(str, rm.tokenizer.decode([i])) for i in response_ids])  # one id list: a str
    return Encoding(ids=ids, start=len(prompt_ids), stop=len(ids), offsets=offsets, special=[False] * n, texts=texts)
