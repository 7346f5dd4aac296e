// Message actions on the live page: "Delete" asks in a dialog instead of on a page of its own
// (the link still leads to that page without JavaScript), then deletes without a reload.

export function enhanceActions(list, { csrf, poller }) {
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
    const link = event.target.closest("a[data-delete]");
    if (!link || !("HTMLDialogElement" in window)) return;
    event.preventDefault();
    ask(link);
  });
}
