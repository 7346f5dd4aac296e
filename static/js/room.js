// The live room: brings the plain room page to life. Without this script every form still works.
// Plain ES modules, no build step:
// - room/poller.js   the adaptive poll loop and idle detection
// - room/messages.js inserting what changed, "new below", presence, the hidden tab's title
// - room/notify.js   desktop notifications, once asked for
// - room/compose.js  posting through fetch
// - room/upload.js   uploads with a progress bar
// - room/history.js  older pages loaded on scrolling up
// - room/actions.js  message actions: delete asks in a dialog, edit in place

import { enhanceActions } from "./room/actions.js";
import { enhanceCompose } from "./room/compose.js";
import { loadOlderOnScroll } from "./room/history.js";
import { Messages } from "./room/messages.js";
import { offerNotifications } from "./room/notify.js";
import { Poller } from "./room/poller.js";
import { enhanceUpload } from "./room/upload.js";

const room = document.querySelector("article.room[data-slug]");
if (room) {
  start(room);
}

function start(room) {
  const seconds = (name) => Number(room.dataset[name]) * 1000;
  const onLatest = room.dataset.latest === "true";
  const messages = new Messages(room, onLatest);
  const poller = new Poller({
    slug: room.dataset.slug,
    cursor: room.dataset.cursor,
    onLatest,
    cfg: {
      min: seconds("pollMin"),
      step: seconds("pollStep"),
      max: seconds("pollMax"),
      idleAfter: seconds("idleAfter"),
      waitMax: seconds("pollWaitMax"),
    },
    apply: (data) => messages.apply(data),
    onActive: () => messages.seen(),
  });
  offerNotifications();
  const context = { slug: room.dataset.slug, csrf: room.dataset.csrf, messages, poller };
  const compose = room.querySelector("form.compose");
  if (compose) enhanceCompose(compose, context);
  const upload = room.querySelector("form.upload");
  if (upload) enhanceUpload(upload, context);
  keepComposerHeight(document.getElementById("composer"));
  loadOlderOnScroll(room, messages.list);
  enhanceActions(messages.list, context);
  poller.start();
}

// The pinned composer's height, for `scroll-margin-bottom`: a message scrolled into view stops above it.
function keepComposerHeight(composer) {
  if (!composer || !("ResizeObserver" in window)) return;
  new ResizeObserver(() => {
    document.documentElement.style.setProperty("--composer-height", `${composer.offsetHeight}px`);
  }).observe(composer);
}
