// The page's own script (loaded once, inline in <head>, no network): tap-for-details on the heatmap, the
// "updating…" mark on results being recomputed, presentation mode, and the "Copy link to this view" address.
// gr.HTML replaces its content on every render, so clicks are handled by one listener on the document.
(() => {
  "use strict";
  const STALE = ["heatmap", "numbers", "rewards-plot", "step-view"];

  // Write a value into a Gradio textbox (by elem_id) as typing does: the DOM "input" event updates its value
  // (Gradio's .change), a keypress makes Gradio send its .input event.
  function setBox(id, value) {
    const box = document.querySelector(`#${id} textarea, #${id} input`);
    if (!box) return false;
    box.value = value;
    box.dispatchEvent(new Event("input", { bubbles: true }));
    box.dispatchEvent(new KeyboardEvent("keypress", { key: "Unidentified", bubbles: true }));
    return true;
  }

  // Mark (true) or unmark (false) the Explore results as out of date while a request runs. A new result also
  // hides the details of the token tapped in the old one, until the next tap.
  window.redStale = (on) => {
    for (const id of STALE) {
      const el = document.getElementById(id);
      if (el) el.classList.toggle("red-stale", Boolean(on));
    }
    const details = document.getElementById("tok-details");
    if (on && details) details.classList.add("red-hidden");
  };

  // Presentation mode: larger type for a projector (a class on <body>; see app.css).
  window.redPresent = (on) => document.body.classList.toggle("red-present", Boolean(on));

  // "?prompt=..." from the server -> the full address of this page with it; copied to the clipboard if allowed.
  window.redLink = (query) => {
    if (!query) return "";
    const url = window.location.origin + window.location.pathname + query;
    try {
      if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(url).catch(() => {});
    } catch (err) { /* the link is still shown in the box to copy by hand */ }
    return url;
  };

  // The "What if?" panel (app/whatif.py) opens on the tapped unit: its hidden box sits outside the closed panel.
  function toWhatIf(i) {
    setBox("whatif-pick", `${i}:${Date.now()}`);  // as for tok-pick: a second tap on the same unit is a change too
  }

  function pick(tok) {
    const i = tok.dataset.i;
    if (i === undefined || !/^\d+$/.test(i)) return;
    document.querySelectorAll("#heatmap .tok.picked").forEach((e) => e.classList.remove("picked"));
    tok.classList.add("picked");
    const details = document.getElementById("tok-details");
    if (details) details.classList.remove("red-hidden");
    setBox("tok-pick", `${i}:${Date.now()}`);  // the nonce makes a second tap on the same unit count
    if (!tok.classList.contains("special")) toWhatIf(i);  // template tokens cannot be edited
  }

  document.addEventListener("click", (ev) => {
    const tok = ev.target instanceof Element ? ev.target.closest("#heatmap .tok") : null;
    if (tok) pick(tok);
  });
})();
