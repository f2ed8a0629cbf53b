"""Shared fixtures: tiny random reward models built in-process, saved, and loaded the way users load them.

Also a check that the tests depend on nothing outside the repository: every file read by Python code
during the session (this process and the Python processes it starts) is recorded with the test that
read it, and the session fails at the end if any lies outside the repository, the virtual environment,
the temp folder and the system folders of tests/data/read_audit/red_read_audit.py (SYSTEM_ALLOWED).
"""

import contextlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

# ----------------------------------------------------------------------------- read audit, part 1
# Started before torch, transformers and red_core are imported, so that it sees their reads too.
ROOT = Path(__file__).resolve().parents[1]
_AUDIT_DIR = Path(__file__).resolve().parent / "data" / "read_audit"
_spec = importlib.util.spec_from_file_location("red_read_audit", _AUDIT_DIR / "red_read_audit.py")
read_audit = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(read_audit)
sys.modules.setdefault("red_read_audit", read_audit)
READS = read_audit.Recorder("<collection>").start()
_SESSION_TMP = Path(tempfile.mkdtemp(prefix="red-tests-"))
(_SESSION_TMP / "reads").mkdir()
os.environ[read_audit.ENV_DIR] = str(_SESSION_TMP / "reads")  # Python child processes write their reads here
os.environ["PYTHONPATH"] = os.pathsep.join([str(_AUDIT_DIR), *filter(None, [os.environ.get("PYTHONPATH")])])
# An empty Hugging Face home (before huggingface_hub is imported): the tests use local folders only and must
# not see this machine's hub cache or token (gradio_client reads the token file to send it as a header).
os.environ["HF_HOME"] = str(_SESSION_TMP / "hf-home")
# An empty home folder and matplotlib cache too (captum, behind the ig method, imports matplotlib, which looks
# for fonts and its cache under HOME): the tests must not read this machine's home folder.
os.environ["HOME"] = str(_SESSION_TMP / "home")
os.environ["MPLCONFIGDIR"] = str(_SESSION_TMP / "mpl")
(_SESSION_TMP / "home").mkdir()
_OUTSIDE: list = []

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported: no hub look-ups in tests
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before any gr.Blocks is made: no telemetry requests
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


# ----------------------------------------------------------------------------- launched apps


@pytest.fixture(scope="session")
def serve_app():
    """Launch a gr.Blocks for the length of a `with` block: `with serve_app(demo, **launch_kwargs()) as url:`.

    Every test that starts a server goes through this. Gradio picks the port: with server_port=None it
    tries 7860, 7861, ... and keeps the first port its server really binds (a taken one, even one taken
    a moment ago by another process, is skipped), so there is no window between choosing a port and
    binding it, as there is with "bind port 0, close, launch on it". Always 127.0.0.1 and never shared:
    host, port and share in `launch_kwargs` are replaced. The app is closed when the block ends, however
    it ends, and any app still open is closed when the session ends.
    """
    running = []

    @contextlib.contextmanager
    def serve(demo, **launch_kwargs):
        kwargs = {k: v for k, v in launch_kwargs.items() if k not in ("server_name", "server_port", "share")}
        demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=None, share=False, quiet=True,
                    **kwargs)
        running.append(demo)
        try:
            assert demo.local_url.startswith("http://127.0.0.1:"), demo.local_url
            yield demo.local_url
        finally:
            running.remove(demo)
            demo.close()

    yield serve
    for demo in running:
        demo.close()


# ----------------------------------------------------------------------------- read audit, part 2

@pytest.fixture
def read_recorder():
    """The session's recorder: `read_recorder.reads` maps each path read so far to the test that first read it."""
    return READS


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    READS.label = os.environ[read_audit.ENV_TEST] = item.nodeid
    yield
    READS.label = os.environ[read_audit.ENV_TEST] = "<after the tests>"


def pytest_sessionfinish(session, exitstatus):
    READS.on = False
    reads = {**read_audit.child_reads(_SESSION_TMP / "reads"), **READS.reads}
    shutil.rmtree(_SESSION_TMP, ignore_errors=True)
    if os.environ.get("RED_READ_AUDIT_LOG"):  # every read, allowed or not, for a look at what the suite reads
        Path(os.environ["RED_READ_AUDIT_LOG"]).write_text(json.dumps(reads, indent=0, sort_keys=True))
    basetemp = session.config.option.basetemp
    _OUTSIDE[:] = read_audit.outside_reads(reads, read_audit.allowed_roots(ROOT, [basetemp] if basetemp else []))
    if _OUTSIDE and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    if _OUTSIDE:
        terminalreporter.section("reads outside the repository", red=True)
        terminalreporter.line("The tests must not depend on files that a fresh clone and its virtual environment "
                              "lack. Allowed outside it: SYSTEM_ALLOWED in tests/data/read_audit/red_read_audit.py.")
        for line in read_audit.format_report(_OUTSIDE):
            terminalreporter.line(line, red=not line.startswith(" "))
