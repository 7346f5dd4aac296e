// Desktop notifications, only once the reader asks for them.

import { fragment } from "./dom.js";

export function offerNotifications() {
  const button = document.getElementById("notify");
  if ("Notification" in window && Notification.permission === "default") {
    button.hidden = false;
    button.addEventListener("click", async () => {
      await Notification.requestPermission();
      button.hidden = true;
    });
  }
}

export function notify(room, messages) {
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  const last = messages[messages.length - 1];
  const text = fragment(last.html).querySelector(".body")?.textContent ?? "";
  new Notification(`${last.author} in ${room.dataset.name}`, { body: text.slice(0, 140), tag: `confab-${room.dataset.slug}` });
}
