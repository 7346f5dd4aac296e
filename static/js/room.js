// The live room: brings the plain room page to life. Without this script every form still works.
//
// - polls `GET /api/rooms/<slug>/events?after=<cursor>` at an adaptive interval: `poll_min` at
//   first, `poll_step` longer after each poll with nothing new, up to `poll_max`; back to
//   `poll_min` on any activity. An active reader asks the server to hold the poll (`wait`), so new
//   messages arrive at once; an idle reader (no input for `idle_after`, or a hidden tab) polls
//   every `poll_max`.
// - posts through `fetch` (Enter sends, Shift+Enter is a new line), uploads with a progress bar.
// - inserts new and changed messages (rendered by the server's own template) in order, once.

const room = document.querySelector("article.room[data-slug]");
if (room) {
  start(room);
}

function start(room) {
  const slug = room.dataset.slug;
  const csrf = room.dataset.csrf;
  const onLatest = room.dataset.latest === "true";
  const seconds = (name) => Number(room.dataset[name]) * 1000;
  const cfg = {
    min: seconds("pollMin"),
    step: seconds("pollStep"),
    max: seconds("pollMax"),
    idleAfter: seconds("idleAfter"),
    waitMax: seconds("pollWaitMax"),
  };

  const list = room.querySelector("ol.messages");
  const status = document.getElementById("live-status");
  const stateLabel = document.getElementById("live-state");
  const pollButton = document.getElementById("poll-now");
  const newBelow = document.getElementById("new-below");
  const notifyButton = document.getElementById("notify");
  const baseTitle = document.title;

  let cursor = room.dataset.cursor;
  let interval = cfg.min;
  let lastInput = Date.now();
  let failures = 0;
  let timer = null;
  let nextAt = 0;
  let controller = null;
  let unseen = 0;
  let below = 0;

  status.hidden = false;

  // ---- Who is the reader: active, idle or hidden ----------------------------------------------
  function activity() {
    if (document.visibilityState === "hidden") return "hidden";
    return Date.now() - lastInput > cfg.idleAfter ? "idle" : "active";
  }

  function noticeInput() {
    const wasIdle = activity() !== "active";
    lastInput = Date.now();
    if (wasIdle) {
      interval = cfg.min;
      pollNow();
    }
  }
  for (const event of ["keydown", "pointerdown", "pointermove", "wheel", "touchstart", "focus"]) {
    window.addEventListener(event, noticeInput, { passive: true });
  }
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") {
      unseen = 0;
      document.title = baseTitle;
      noticeInput();
    }
  });

  // ---- The poll loop ---------------------------------------------------------------------------
  function showInterval() {
    status.dataset.interval = String(Math.round(interval / 1000));
    status.dataset.state = activity();
  }

  function schedule(delay) {
    clearTimeout(timer);
    nextAt = Date.now() + delay;
    timer = setTimeout(poll, delay);
    showInterval();
    tick();
  }

  function tick() {
    const left = Math.max(0, Math.ceil((nextAt - Date.now()) / 1000));
    if (controller) {
      pollButton.textContent = failures ? "reconnecting…" : "live";
    } else {
      pollButton.textContent = failures ? `reconnecting in ${left}s…` : `next check in ${left}s`;
    }
  }
  setInterval(tick, 1000);

  function pollNow() {
    if (controller) controller.abort();
    controller = null;
    clearTimeout(timer);
    poll();
  }
  pollButton.addEventListener("click", () => {
    interval = cfg.min;
    pollNow();
  });

  async function poll() {
    clearTimeout(timer);
    const state = activity();
    const wait = state === "active" ? Math.floor(Math.min(interval, cfg.waitMax) / 1000) : 0;
    const mine = new AbortController();
    controller = mine;
    tick();
    const started = Date.now();
    let changed = false;
    let more = false;
    try {
      const url = `/api/rooms/${encodeURIComponent(slug)}/events?after=${encodeURIComponent(cursor)}&wait=${wait}&state=${state}&latest=${onLatest}`;
      const response = await fetch(url, { signal: mine.signal, headers: { Accept: "application/json" } });
      if (response.status === 401) {
        location.href = `/login?next=${encodeURIComponent(location.pathname)}`;
        return;
      }
      if (response.status === 404) {
        stateLabel.textContent = "This room is no longer available.";
        return;
      }
      if (response.status !== 204 && !response.ok) throw new Error(`HTTP ${response.status}`);
      if (response.status === 200) {
        const data = await response.json();
        changed = data.messages.length > 0;
        more = data.more;
        apply(data);
      }
      failures = 0;
      stateLabel.textContent = "";
      status.classList.remove("offline");
    } catch (error) {
      if (mine.signal.aborted) return; // pollNow() started another one.
      failures += 1;
      stateLabel.textContent = "reconnecting…";
      status.classList.add("offline");
      controller = null;
      schedule(Math.min(cfg.max, 1000 * 2 ** Math.min(failures - 1, 6)));
      return;
    }
    if (controller === mine) controller = null;
    const now = activity();
    if (changed) {
      interval = cfg.min;
    } else if (now !== "active") {
      interval = cfg.max;
    } else {
      interval = Math.min(interval + cfg.step, cfg.max);
    }
    // An active reader's polls are held by the server for the interval, back to back, so new
    // messages arrive at once. A poll that came back early without news was not held (the server
    // was busy): wait out the interval instead of asking again at once.
    const spent = Date.now() - started;
    const held = wait > 0 && (changed || spent >= wait * 1000 - 500);
    if (more) {
      schedule(0);
    } else if (now === "active" && held) {
      schedule(250);
    } else {
      schedule(Math.max(0, interval - spent));
    }
  }

  // ---- Applying what changed -------------------------------------------------------------------
  function fragment(html) {
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    return template.content.firstElementChild;
  }

  function nearBottom() {
    return window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 200;
  }

  function newestId() {
    const items = list.querySelectorAll("li.message");
    return items.length ? Number(items[items.length - 1].id.slice(1)) : 0;
  }

  function insert(message) {
    const existing = document.getElementById(`m${message.id}`);
    const item = fragment(message.html);
    if (existing) {
      existing.replaceWith(item);
      return false;
    }
    if (!onLatest || message.id < newestId()) return false; // Not on this page.
    list.hidden = false;
    room.querySelector(".empty")?.remove();
    list.append(item);
    return true;
  }

  function apply(data) {
    cursor = data.cursor;
    const stick = nearBottom();
    let added = 0;
    let fromOthers = [];
    for (const message of data.messages) {
      if (insert(message)) {
        added += 1;
        if (message.author !== myName()) fromOthers.push(message);
      }
    }
    if (added) {
      if (stick) {
        list.lastElementChild.scrollIntoView({ block: "end" });
      } else {
        below += added;
        newBelow.textContent = `${below} new message${below === 1 ? "" : "s"} ↓`;
        newBelow.hidden = false;
      }
    }
    if (fromOthers.length && document.visibilityState === "hidden") {
      unseen += fromOthers.length;
      document.title = `(${unseen}) ${baseTitle}`;
      notify(fromOthers);
    }
    if (data.presence) showPresence(data.presence);
  }

  function myName() {
    const logout = document.querySelector("header.top form button");
    return logout ? logout.textContent.replace(/^Log out /, "").trim() : "";
  }

  newBelow.addEventListener("click", () => {
    below = 0;
    newBelow.hidden = true;
    list.lastElementChild?.scrollIntoView({ block: "end" });
  });
  window.addEventListener("scroll", () => {
    if (below && nearBottom()) {
      below = 0;
      newBelow.hidden = true;
    }
  }, { passive: true });

  function showPresence(presence) {
    const box = document.getElementById("presence");
    if (!box) return;
    box.replaceChildren(...presence.map((p) => {
      const item = document.createElement("li");
      item.className = `presence-${p.state}`;
      const dot = document.createElement("span");
      dot.className = "dot";
      const state = document.createElement("span");
      state.className = "muted";
      state.textContent = ` ${p.state}`;
      item.append(dot, p.username, state);
      return item;
    }));
  }

  // ---- Desktop notifications, only once the reader asks for them ------------------------------
  if ("Notification" in window && Notification.permission === "default") {
    notifyButton.hidden = false;
    notifyButton.addEventListener("click", async () => {
      await Notification.requestPermission();
      notifyButton.hidden = true;
    });
  }

  function notify(messages) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    const last = messages[messages.length - 1];
    const text = fragment(last.html).querySelector(".body")?.textContent ?? "";
    new Notification(`${last.author} in ${room.dataset.name}`, { body: text.slice(0, 140), tag: `confab-${slug}` });
  }

  // ---- Posting without a reload ----------------------------------------------------------------
  // A fresh id for the next post or upload, so that a resend is recognised and a new one is not.
  // crypto.randomUUID exists only on https and localhost; getRandomValues works on any origin
  // (a plain-http LAN address too).
  function newClientId() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  const form = room.querySelector("form.compose");
  if (form) enhanceCompose(form);

  function enhanceCompose(form) {
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
        insert(data);
        list.lastElementChild?.scrollIntoView({ block: "end" });
        interval = cfg.min;
        pollNow();
      } catch {
        showError("Could not send: the connection is down. Your text is kept: press Send to retry.");
      } finally {
        button.disabled = false;
      }
    });
  }

  // ---- Uploads with a progress bar and a cancel button ----------------------------------------
  const upload = room.querySelector("form.upload");
  if (upload) enhanceUpload(upload);

  function enhanceUpload(form) {
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
          pollNow();
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

  // ---- Scrolling up loads older messages -------------------------------------------------------
  const older = room.querySelector('nav.pager a[rel="prev"]');
  if (older && "IntersectionObserver" in window) {
    let loading = false;
    const observer = new IntersectionObserver(async (entries) => {
      if (loading || !entries.some((e) => e.isIntersecting)) return;
      loading = true;
      try {
        const response = await fetch(older.href, { headers: { Accept: "text/html" } });
        if (!response.ok) return;
        const page = new DOMParser().parseFromString(await response.text(), "text/html");
        const items = [...page.querySelectorAll("ol.messages > li")].filter((li) => !li.id || !document.getElementById(li.id));
        const before = document.documentElement.scrollHeight;
        list.prepend(...items);
        window.scrollBy(0, document.documentElement.scrollHeight - before);
        const next = page.querySelector('nav.pager a[rel="prev"]');
        if (next) {
          older.href = next.href;
        } else {
          older.replaceWith(Object.assign(document.createElement("span"), { className: "muted", textContent: "This is the beginning of the room." }));
          observer.disconnect();
        }
      } finally {
        loading = false;
      }
    });
    observer.observe(older);
  }

  schedule(cfg.min);
}
