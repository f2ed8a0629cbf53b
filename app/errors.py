"""What a visitor sees when something goes wrong: one readable message, never markup, never a server path.

Gradio renders an error's message as HTML in the toast, so text a visitor typed (a model name with
`<img>` in it) would become markup: `user_error` escapes it. API clients (gradio_client) get the
same text, with only `&`, `<` and `>` escaped. `friendly(fn)` wraps an event handler so that any
other exception also reaches the visitor as such a message instead of gradio's generic
"upstream exception", and the server keeps serving. `handler(fn, ctx)` is how every named event
is wired: the context bound, ZeroGPU where asked (app/hosting.py), errors made readable.
"""

from __future__ import annotations

import functools
import html
import inspect

import gradio as gr

from app.hosting import gpu, scrub


def user_error(message: str) -> gr.Error:
    """A gr.Error whose message shows as plain text; `.raw` keeps the unescaped text for re-use."""
    text = scrub(str(message)).encode("utf-8", "replace").decode("utf-8")  # lone surrogates cannot be sent as JSON
    err = gr.Error(html.escape(text, quote=False))
    err.raw = text
    return err


def raw_message(err: gr.Error) -> str:
    """The unescaped text of an error made by `user_error` (or the message of any other gr.Error)."""
    return getattr(err, "raw", err.message)


def _translate(err: Exception) -> gr.Error:
    if isinstance(err, gr.Error):
        return err if hasattr(err, "raw") else user_error(html.unescape(str(err.message)))
    return user_error(f"Something went wrong ({type(err).__name__}: {err}). Check the input and try again; "
                      f"the app is still running.")


def friendly(fn):
    """Wrap an event handler (plain or generator) so every exception reaches the visitor as a readable message."""
    if inspect.isgeneratorfunction(inspect.unwrap(fn) if not isinstance(fn, functools.partial) else fn.func):
        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as err:  # noqa: BLE001 - every failure becomes a message
                raise _translate(err) from err
        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as err:  # noqa: BLE001
            raise _translate(err) from err
    return wrapper


def handler(fn, ctx=None, *, on_gpu: bool = False):
    """An event function: `fn` with the context bound, on the GPU under ZeroGPU if asked, errors made readable."""
    fn = gpu(fn) if on_gpu else fn
    return friendly(functools.partial(fn, ctx) if ctx is not None else fn)
