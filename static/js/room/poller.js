// The poll loop: asks `GET /api/rooms/<slug>/events?after=<cursor>` what changed, at an adaptive
// interval. `min` at first, `step` longer after each poll with nothing new, up to `max`; back to
// `min` on any activity. An active reader asks the server to hold the poll (`wait`), so new
// messages arrive at once; an idle reader (no input for `idleAfter`, or a hidden tab) polls every
// `max`. A visible countdown shows the next poll; clicking it polls now.

export class Poller {
  // `cfg` holds the timings in milliseconds; `apply(data)` receives each answer with changes.
  constructor({ slug, cursor, onLatest, cfg, apply, onActive }) {
    this.slug = slug;
    this.cursor = cursor;
    this.onLatest = onLatest;
    this.cfg = cfg;
    this.apply = apply;
    this.onActive = onActive;
    this.interval = cfg.min;
    this.lastInput = Date.now();
    this.failures = 0;
    this.timer = null;
    this.nextAt = 0;
    this.controller = null;
    this.status = document.getElementById("live-status");
    this.stateLabel = document.getElementById("live-state");
    this.button = document.getElementById("poll-now");
  }

  // Who is the reader: active, idle or hidden.
  activity() {
    if (document.visibilityState === "hidden") return "hidden";
    return Date.now() - this.lastInput > this.cfg.idleAfter ? "idle" : "active";
  }

  start() {
    this.status.hidden = false;
    const noticeInput = () => this.noticeInput();
    for (const event of ["keydown", "pointerdown", "pointermove", "wheel", "touchstart", "focus"]) {
      window.addEventListener(event, noticeInput, { passive: true });
    }
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") {
        this.onActive();
        this.noticeInput();
      }
    });
    this.button.addEventListener("click", () => this.soon());
    setInterval(() => this.tick(), 1000);
    this.schedule(this.cfg.min);
  }

  noticeInput() {
    const wasIdle = this.activity() !== "active";
    this.lastInput = Date.now();
    if (wasIdle) this.soon();
  }

  // Something happened (a post, an upload, the reader is back): poll at once, then fast again.
  soon() {
    this.interval = this.cfg.min;
    this.now();
  }

  now() {
    if (this.controller) this.controller.abort();
    this.controller = null;
    clearTimeout(this.timer);
    this.poll();
  }

  schedule(delay) {
    clearTimeout(this.timer);
    this.nextAt = Date.now() + delay;
    this.timer = setTimeout(() => this.poll(), delay);
    this.status.dataset.interval = String(Math.round(this.interval / 1000));
    this.status.dataset.state = this.activity();
    this.tick();
  }

  tick() {
    const left = Math.max(0, Math.ceil((this.nextAt - Date.now()) / 1000));
    // While offline the state label says "reconnecting…"; the button only says when it retries.
    if (this.controller) {
      this.button.textContent = this.failures ? "trying…" : "live";
    } else {
      this.button.textContent = this.failures ? `retry in ${left}s` : `next check in ${left}s`;
    }
  }

  async poll() {
    clearTimeout(this.timer);
    const cfg = this.cfg;
    const state = this.activity();
    const wait = state === "active" ? Math.floor(Math.min(this.interval, cfg.waitMax) / 1000) : 0;
    const mine = new AbortController();
    this.controller = mine;
    this.tick();
    const started = Date.now();
    let changed = false;
    let more = false;
    try {
      const url = `/api/rooms/${encodeURIComponent(this.slug)}/events?after=${encodeURIComponent(this.cursor)}&wait=${wait}&state=${state}&latest=${this.onLatest}`;
      const response = await fetch(url, { signal: mine.signal, headers: { Accept: "application/json" } });
      if (response.status === 401) {
        location.href = `/login?next=${encodeURIComponent(location.pathname)}`;
        return;
      }
      if (response.status === 404) {
        this.stateLabel.textContent = "This room is no longer available.";
        return;
      }
      if (response.status !== 204 && !response.ok) throw new Error(`HTTP ${response.status}`);
      if (response.status === 200) {
        const data = await response.json();
        changed = data.messages.length > 0;
        more = data.more;
        this.cursor = data.cursor;
        this.apply(data);
      }
      this.failures = 0;
      this.stateLabel.textContent = "";
      this.status.classList.remove("offline");
    } catch (error) {
      if (mine.signal.aborted) return; // now() started another one.
      this.failures += 1;
      this.stateLabel.textContent = "reconnecting…";
      this.status.classList.add("offline");
      this.controller = null;
      this.schedule(Math.min(cfg.max, 1000 * 2 ** Math.min(this.failures - 1, 6)));
      return;
    }
    if (this.controller === mine) this.controller = null;
    const now = this.activity();
    if (changed) {
      this.interval = cfg.min;
    } else if (now !== "active") {
      this.interval = cfg.max;
    } else {
      this.interval = Math.min(this.interval + cfg.step, cfg.max);
    }
    // An active reader's polls are held by the server for the interval, back to back, so new
    // messages arrive at once. A poll that came back early without news was not held (the server
    // was busy): wait out the interval instead of asking again at once.
    const spent = Date.now() - started;
    const held = wait > 0 && (changed || spent >= wait * 1000 - 500);
    if (more) {
      this.schedule(0);
    } else if (now === "active" && held) {
      this.schedule(250);
    } else {
      this.schedule(Math.max(0, this.interval - spent));
    }
  }
}
