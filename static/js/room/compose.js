// Posting without a reload: Enter sends, Shift+Enter is a new line; a refused post keeps its text.

import { newClientId } from "./ids.js";

export function enhanceCompose(form, { slug, csrf, messages, poller }) {
  const box = form.querySelector("textarea");
  const button = form.querySelector("button[type=submit]");
  const clientId = form.querySelector("input[name=client_id]");
  let error = form.querySelector(".error");
  const grow = () => {
    box.style.height = "auto";
    box.style.height = `${Math.min(box.scrollHeight, window.innerHeight * 0.4)}px`;
  };
  box.addEventListener("input", grow);
  box.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  function showError(text) {
    if (!error) {
      error = document.createElement("p");
      error.className = "error";
      error.setAttribute("role", "alert");
      form.prepend(error);
    }
    error.textContent = text;
    error.hidden = !text;
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = box.value;
    if (!body.trim()) {
      showError("A message can't be empty.");
      return;
    }
    button.disabled = true;
    try {
      const response = await fetch(`/api/rooms/${encodeURIComponent(slug)}/messages`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify({ body, client_id: clientId.value }),
      });
      const data = await response.json().catch(() => ({}));
      if (!response.ok) {
        showError(data.error || `Could not send (error ${response.status}). Your text is kept: press Send to retry.`);
        return;
      }
      box.value = "";
      grow();
      showError("");
      clientId.value = newClientId();
      messages.insert(data);
      messages.scrollToEnd();
      poller.soon();
    } catch {
      showError("Could not send: the connection is down. Your text is kept: press Send to retry.");
    } finally {
      button.disabled = false;
    }
  });
}
