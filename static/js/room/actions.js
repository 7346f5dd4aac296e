// Message actions on the live page. Reactions toggle in place; "Delete" asks in a dialog instead
// of on a page of its own; "Edit" edits in place (Enter saves, Esc cancels), and ↑ in an empty
// composer edits my last message. Without JavaScript the forms post and the links lead to their
// own pages.

export function enhanceActions(list, { csrf, poller, messages }) {
  let dialog = null;
  function ask(link) {
    if (!dialog) {
      dialog = document.createElement("dialog");
      dialog.className = "confirm";
      dialog.innerHTML = `<form method="dialog" class="stack">
        <p><strong>Delete this message?</strong><br>Its text and file will be gone for everyone; a "message deleted" line stays.</p>
        <p class="error" hidden></p>
        <div class="row"><button value="delete" type="submit">Delete</button><button value="cancel" type="submit" class="link">Cancel</button></div>
      </form>`;
      document.body.append(dialog);
    }
    const error = dialog.querySelector(".error");
    error.hidden = true;
    dialog.onclose = async () => {
      if (dialog.returnValue !== "delete") return;
      const response = await fetch(link.href, {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ csrf }),
      }).catch(() => null);
      if (!response || !response.ok) {
        error.textContent = "Could not delete: try again.";
        error.hidden = false;
        dialog.showModal();
        return;
      }
      poller.soon();
    };
    dialog.returnValue = "";
    dialog.showModal();
    dialog.querySelector("button[value=delete]").focus();
  }

  list.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-delete], a[data-edit]");
    if (!link) return;
    if (link.hasAttribute("data-delete")) {
      if (!("HTMLDialogElement" in window)) return;
      event.preventDefault();
      link.closest("details")?.removeAttribute("open");
      ask(link);
    } else {
      event.preventDefault();
      link.closest("details")?.removeAttribute("open");
      editInPlace(link.closest("li.message"), link.href, { csrf, poller, messages });
    }
  });

  // Reactions toggle without a reload; the poll brings the new counts.
  list.addEventListener("submit", async (event) => {
    const form = event.target.closest("form[data-react]");
    if (!form) return;
    event.preventDefault();
    form.closest("details")?.removeAttribute("open");
    const body = new URLSearchParams(new FormData(form, event.submitter));
    const response = await fetch(form.action, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body,
    }).catch(() => null);
    if (!response || !response.ok) {
      // The plain form (a reaction's page, where the emoji can be picked again) says what went wrong.
      if (form.action.endsWith("/reactions")) location.href = form.action;
      else form.submit();
      return;
    }
    poller.soon();
  });

  const composer = document.getElementById("body");
  composer?.addEventListener("keydown", (event) => {
    if (event.key !== "ArrowUp" || composer.value !== "" || event.isComposing) return;
    const mine = [...list.querySelectorAll("li.message")].reverse().find((item) => item.querySelector("a[data-edit]"));
    if (!mine) return;
    event.preventDefault();
    editInPlace(mine, mine.querySelector("a[data-edit]").href, { csrf, poller, messages });
  });
}

// Replaces a message's text by an editor holding its source (read from the edit page, the no-JS
// path), and saves through that page's form.
async function editInPlace(item, href, { csrf, poller, messages }) {
  if (!item || item.querySelector(".edit-inline")) return;
  const page = await fetch(href).then((r) => (r.ok ? r.text() : null)).catch(() => null);
  const source = page && new DOMParser().parseFromString(page, "text/html").querySelector("textarea[name=body]");
  if (!source) {
    location.href = href; // The edit page says what went wrong.
    return;
  }
  const body = item.querySelector(".body");
  const form = document.createElement("form");
  form.className = "edit-inline";
  form.innerHTML = `<label class="visually-hidden" for="edit-${item.id}">Edit the message</label>
    <textarea id="edit-${item.id}" name="body" rows="3"></textarea>
    <p class="error" role="alert" hidden></p>
    <div class="row"><button type="submit">Save</button><button type="button" class="link" data-cancel>Cancel</button>
    <span class="muted">Enter saves, Esc cancels</span></div>`;
  const box = form.querySelector("textarea");
  box.value = source.value;
  if (body) body.hidden = true;
  (body || item.querySelector(".meta")).after(form);
  box.focus();
  box.setSelectionRange(box.value.length, box.value.length);

  const close = () => {
    form.remove();
    if (body) body.hidden = false;
    messages.applyHeld(item.id);
    document.getElementById("body")?.focus();
  };
  form.querySelector("[data-cancel]").addEventListener("click", close);
  box.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      close();
    } else if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = form.querySelector(".error");
    const response = await fetch(href, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ csrf, body: box.value }),
    }).catch(() => null);
    if (!response || !response.ok) {
      const refused = response && new DOMParser().parseFromString(await response.text(), "text/html").querySelector("main .error");
      error.textContent = refused ? refused.textContent : "Could not save: the connection is down. Your text is kept.";
      error.hidden = false;
      return;
    }
    close();
    poller.soon();
  });
}
