// Uploads with a progress bar and a cancel button; the plain form's answer page supplies errors.

import { newClientId } from "./ids.js";

export function enhanceUpload(form, { poller }) {
  const progress = document.createElement("progress");
  progress.max = 100;
  progress.hidden = true;
  const cancel = document.createElement("button");
  cancel.type = "button";
  cancel.className = "link";
  cancel.textContent = "Cancel";
  cancel.hidden = true;
  const message = document.createElement("span");
  message.className = "error";
  form.append(progress, cancel, message);
  let xhr = null;
  cancel.addEventListener("click", () => xhr?.abort());
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) progress.value = Math.round((e.loaded / e.total) * 100);
    });
    const done = (text) => {
      progress.hidden = true;
      cancel.hidden = true;
      message.textContent = text;
      xhr = null;
    };
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        form.reset();
        done("");
        form.querySelector("input[name=client_id]").value = newClientId();
        poller.now();
      } else {
        const page = new DOMParser().parseFromString(xhr.responseText, "text/html");
        done(page.querySelector("main p, .error")?.textContent || `Upload failed (error ${xhr.status}).`);
      }
    });
    xhr.addEventListener("error", () => done("Upload failed: the connection is down."));
    xhr.addEventListener("abort", () => done("Upload cancelled."));
    progress.value = 0;
    progress.hidden = false;
    cancel.hidden = false;
    message.textContent = "";
    xhr.send(new FormData(form));
  });
}
