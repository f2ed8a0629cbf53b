"""Tiny random models for tests and benchmarks: a config plus a tokenizer trained on the fly.

Nothing is downloaded. Each builder saves a model folder (safetensors + tokenizer) and returns its
path, so tests load it through the same `load_reward_model` users hit.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

CORPUS = [
    "The movie was great and the actors were wonderful.", "This is a terrible, awful day.",
    "I love sunny mornings 🌞 and fresh coffee.", "Not bad at all, honestly quite good!",
    "世界 你好, hello world.", "Line one\nLine two\n\n  indented   spaces\ttab.",
    "Why? Because it works. Does it? Yes!", "Prompt: tell me a story. Response: once upon a time.",
] * 20

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def byte_bpe_tokenizer(vocab_size: int = 400, *, bos: bool = True, chat: bool = False,
                       pad_is_eos: bool = False, no_pad: bool = False) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer (GPT-2 / Llama-3 / Qwen style) trained on a small corpus."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<pad>", "<bos>", "<eos>", "<|im_start|>", "<|im_end|>"]
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    if bos:
        tok.post_processor = processors.TemplateProcessing(single="<bos> $A", pair="<bos> $A $B",
                                                           special_tokens=[("<bos>", tok.token_to_id("<bos>"))])
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    kw = {"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": None if no_pad else ("<eos>" if pad_is_eos else "<pad>")}
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=1024,
                                   additional_special_tokens=["<|im_start|>", "<|im_end|>"], **kw)
    if chat:
        fast.chat_template = CHAT_TEMPLATE
    return fast


def wordpiece_tokenizer(vocab_size: int = 300) -> PreTrainedTokenizerFast:
    """A BERT-style WordPiece tokenizer: [CLS] a [SEP] (b [SEP]), lower-cased, offsets skip spaces."""
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(CORPUS, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                       special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=512, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")


def save_model(model, tokenizer, folder: str | Path) -> Path:
    folder = Path(folder)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_reward_model(arch: str, folder: str | Path, *, layers: int = 2, width: int = 64, seed: int = 0,
                      num_labels: int = 1, tokenizer=None, **tok_kw) -> Path:
    """Save a random `...ForSequenceClassification` model: arch in llama, qwen2, gpt2, bert, deberta."""
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        DebertaV2Config,
        DebertaV2ForSequenceClassification,
        GPT2Config,
        GPT2ForSequenceClassification,
        LlamaConfig,
        LlamaForSequenceClassification,
        PreTrainedConfig,
        PreTrainedModel,
        Qwen2Config,
        Qwen2ForSequenceClassification,
    )

    torch.manual_seed(seed)
    encoder = arch in ("bert", "deberta")
    tok = tokenizer or (wordpiece_tokenizer() if encoder else byte_bpe_tokenizer(**tok_kw))
    v = len(tok)
    pad = tok.pad_token_id
    heads = max(2, width // 32)
    cfg: PreTrainedConfig
    if arch == "llama":
        cfg = LlamaConfig(vocab_size=v, hidden_size=width, intermediate_size=width * 2, num_hidden_layers=layers,
                          num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=1024)
    elif arch == "qwen2":
        cfg = Qwen2Config(vocab_size=v, hidden_size=width, intermediate_size=width * 2, num_hidden_layers=layers,
                          num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=1024)
    elif arch == "gpt2":
        cfg = GPT2Config(vocab_size=v, n_embd=width, n_layer=layers, n_head=heads, n_positions=1024)
    elif arch == "bert":
        cfg = BertConfig(vocab_size=v, hidden_size=width, intermediate_size=width * 2, num_hidden_layers=layers,
                         num_attention_heads=heads, max_position_embeddings=512)
    elif arch == "deberta":
        cfg = DebertaV2Config(vocab_size=v, hidden_size=width, intermediate_size=width * 2, num_hidden_layers=layers,
                              num_attention_heads=heads, max_position_embeddings=512,
                              pooler_hidden_size=width)  # type: ignore[call-arg]  # read from **kwargs, not in the stub
    else:
        raise ValueError(f"unknown arch {arch!r}")
    cfg.num_labels = num_labels
    cfg.pad_token_id = pad
    cfg.bos_token_id, cfg.eos_token_id = tok.bos_token_id, tok.eos_token_id
    # looked up rather than assigned per branch, so mypy keeps the common type for `cls(cfg)`
    classes: dict[str, type[PreTrainedModel]] = {
        "llama": LlamaForSequenceClassification, "qwen2": Qwen2ForSequenceClassification,
        "gpt2": GPT2ForSequenceClassification, "bert": BertForSequenceClassification,
        "deberta": DebertaV2ForSequenceClassification}
    model = classes[arch](cfg).eval()
    if not encoder:  # a random head gives tiny scores; scale it so differences are visible
        with torch.no_grad():
            model.score.weight.mul_(20.0)
    return save_model(model, tok, folder)


def tiny_causal_lm(folder: str | Path, *, layers: int = 2, width: int = 64, seed: int = 0, tokenizer=None) -> Path:
    """Save a random LlamaForCausalLM (a policy) with the byte-level tokenizer."""
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    tok = tokenizer or byte_bpe_tokenizer()
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=width, intermediate_size=width * 2, num_hidden_layers=layers,
                      num_attention_heads=max(2, width // 32), num_key_value_heads=max(2, width // 32),
                      max_position_embeddings=1024, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id, tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg).eval()
    model.generation_config = GenerationConfig(pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                                               eos_token_id=tok.eos_token_id)
    return save_model(model, tok, folder)
