// "Copy" buttons beside read-only fields (one-time links). Without JavaScript the field is there
// to select and copy by hand; the button only appears when it can work.

for (const button of document.querySelectorAll("button[data-copy]")) {
  const field = document.getElementById(button.dataset.copy);
  if (!field) continue;
  button.hidden = false;
  button.addEventListener("click", async () => {
    field.select();
    try {
      // The clipboard API exists only on https and localhost; elsewhere the selection is copied.
      if (navigator.clipboard && window.isSecureContext) {
        await navigator.clipboard.writeText(field.value);
      } else {
        document.execCommand("copy");
      }
      button.textContent = "Copied";
    } catch {
      button.textContent = "Select and copy";
    }
  });
}
