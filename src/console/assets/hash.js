// Hashes the chosen contract PDF in the browser (SubtleCrypto SHA-256) and writes the digest into
// the form. The file itself is never read by the server: its input has no name, so it is not sent.
"use strict";
document.addEventListener("change", async (event) => {
  const input = event.target;
  if (!(input instanceof HTMLInputElement) || input.type !== "file" || !input.dataset.hashInto) return;
  const target = document.getElementById(input.dataset.hashInto);
  const shown = document.getElementById(input.dataset.hashInto + "-shown");
  const file = input.files && input.files[0];
  if (!target || !file) return;
  target.value = "";
  const digest = await crypto.subtle.digest("SHA-256", await file.arrayBuffer());
  const hex = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
  target.value = hex;
  if (shown) shown.textContent = hex;
});
// A sign-in link carries the token in the fragment (never sent to a server): move it into the form.
document.addEventListener("DOMContentLoaded", () => {
  const box = document.getElementById("token");
  const m = /^#token=(.+)$/.exec(window.location.hash);
  if (box && m) {
    box.value = decodeURIComponent(m[1]);
    history.replaceState(null, "", window.location.pathname);
  }
});
// A CSV chosen for import is read here and put into the form's text area: the text is what is sent.
document.addEventListener("change", async (event) => {
  const input = event.target;
  if (!(input instanceof HTMLInputElement) || input.type !== "file" || !input.dataset.readInto) return;
  const target = document.getElementById(input.dataset.readInto);
  const file = input.files && input.files[0];
  if (target && file) target.value = await file.text();
});
