// Posting without a reload: Enter sends, Shift+Enter is a new line; the box empties at once for
// the next message, and a refused post puts its text back.

import { newClientId } from "./ids.js";

export function enhanceCompose(form, { slug, csrf, messages, poller }) {
  const box = form.querySelector("textarea");
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
  // A refused or lost send puts its text (and its one-time token, so a retry posts once) back;
  // anything typed meanwhile stays after it.
  function restore(body, id) {
    if (box.value.trim()) {
      box.value = `${body}\n${box.value}`;
    } else {
      box.value = body;
      clientId.value = id;
    }
    grow();
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = box.value;
    if (!body.trim()) {
      showError("A message can't be empty.");
      return;
    }
    // The box is free for the next message at once (typing ahead never loses text).
    const id = clientId.value;
    box.value = "";
    grow();
    clientId.value = newClientId();
    try {
      const response = await fetch(`/api/rooms/${encodeURIComponent(slug)}/messages`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify({ body, client_id: id }),
      });
      const data = await response.json().catch(() => ({}));
      if (!response.ok) {
        restore(body, id);
        showError(data.error || `Could not send (error ${response.status}). Your text is kept: press Send to retry.`);
        return;
      }
      showError("");
      messages.insert(data);
      messages.scrollToEnd();
      poller.soon();
    } catch {
      restore(body, id);
      showError("Could not send: the connection is down. Your text is kept: press Send to retry.");
    }
  });
}
