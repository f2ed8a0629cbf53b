"""Shared fixtures: tiny random reward models built in-process, saved, and loaded the way users load them."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported: no hub look-ups in tests
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read when torch loads: no spinning threads on 2 cores

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(2)

from red_core import load_reward_model, testing  # noqa: E402


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    """Build (once per session) and return the folder of a tiny RM: model_dir('llama', chat=True)."""
    built = {}

    def make(arch: str, **kw) -> str:
        key = (arch, tuple(sorted(kw.items())))
        if key not in built:
            folder = tmp_path_factory.mktemp(f"{arch}-rm")
            built[key] = str(testing.tiny_reward_model(arch, folder, **kw))
        return built[key]

    return make


@pytest.fixture(scope="session")
def rm_llama(model_dir):
    return load_reward_model(model_dir("llama"))


@pytest.fixture(scope="session")
def rm_gpt2(model_dir):
    return load_reward_model(model_dir("gpt2", bos=False))


@pytest.fixture(scope="session")
def rm_qwen_chat(model_dir):
    return load_reward_model(model_dir("qwen2", chat=True))


@pytest.fixture(scope="session")
def rm_bert(model_dir):
    return load_reward_model(model_dir("bert"))


@pytest.fixture(scope="session")
def rm_deberta(model_dir):
    return load_reward_model(model_dir("deberta"))
