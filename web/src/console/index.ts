// The therapist and moderator console (docs/moderation.md, "Web console"): sign-in with the
// credential (kept in this tab's sessionStorage only, checked locally against the published key),
// session creation, and, inside the room, the host tools: lobby queue, member actions, room
// controls, timer, report queue, end session. Participants get the waiting-room screen and the
// closing card. Every piece of data reaches the DOM as text, never as HTML.
import { ChatError, type Connection, type RoomSession, type Waiting, describeError } from "../client.js";
import { openMeta } from "../e2ee/formats.js";
import { unb64id, type RoomLink } from "../wire.js";
import { CredentialError, serverKey, splitToken, verifyBadge, verifyCert } from "./credentials.js";

type Child = Node | string | null | undefined | false;
export function h(tag: string, attrs: Record<string, string | boolean | undefined> = {}, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}
function button(text: string, onClick: () => unknown, cls = "", label?: string): HTMLButtonElement {
  const b = h("button", { type: "button", class: cls || undefined, "aria-label": label }, text) as HTMLButtonElement;
  b.addEventListener("click", () => void onClick());
  return b;
}
const errText = (e: unknown, fallback: string): string =>
  e instanceof CredentialError ? e.message : e instanceof ChatError ? (e.code.startsWith("credential_") ? credentialMessage(e.code) : describeError(e.code) === describeError("?") ? `${fallback} (${e.code})` : describeError(e.code)) : fallback;
function credentialMessage(code: string): string {
  return (
    {
      credential_malformed: "This credential is damaged. Copy it again, in full.",
      credential_tampered: "This credential was not issued by this server, or it was changed.",
      credential_expired: "This credential has expired. Ask the operator for a new one.",
      credential_revoked: "This credential has been revoked. Ask the operator.",
    }[code] ?? "This credential was refused."
  );
}
const STORE = "chatserver.therapist-credential";
const TIME = (ms: number) => new Date(ms).toLocaleString([], { weekday: "short", hour: "2-digit", minute: "2-digit" });

export interface ConsoleDeps {
  setView(title: string, ...nodes: Node[]): void;
  connection(): Connection;
  enterRoom(link: RoomLink): Promise<void>;
}

/** The "Therapist sign-in" entry in the site header. */
export function installEntry(tools: HTMLElement): void {
  tools.append(h("a", { class: "console-entry", href: "/?console", "data-nav": "/?console" }, "Therapist sign-in"));
}

// --- sign-in and session creation ------------------------------------------------------------

export function showConsole(deps: ConsoleDeps): void {
  const token = sessionStorage.getItem(STORE);
  if (token) void signedIn(deps, token);
  else signInForm(deps);
}

function signInForm(deps: ConsoleDeps, message = ""): void {
  const err = h("p", { class: "error", role: "alert", hidden: !message }, message);
  const input = h("textarea", { id: "cred", rows: "3", autocomplete: "off", spellcheck: "false", "aria-describedby": "cred-hint" }) as HTMLTextAreaElement;
  const submit = h("button", { type: "submit" }, "Sign in");
  const form = h(
    "form",
    { class: "panel join", "aria-labelledby": "console-h", novalidate: true },
    h("h1", { id: "console-h" }, "Therapist sign-in"),
    h("div", { class: "field" }, h("label", { for: "cred" }, "Your credential"), input,
      h("p", { id: "cred-hint", class: "hint" }, "Paste the credential the operator gave you (it starts with cst1.). It stays in this browser tab only and is forgotten when you close it.")),
    err,
    h("div", { class: "row" }, submit, h("a", { class: "button secondary", href: "/", "data-nav": "/" }, "Back")),
  ) as HTMLFormElement;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    err.hidden = true;
    const value = input.value.trim();
    if (!value) return;
    submit.setAttribute("disabled", "");
    try {
      const { key } = await serverKey();
      verifyCert(key, splitToken(value).cert); // locally, before the server sees anything
      sessionStorage.setItem(STORE, value);
      await signedIn(deps, value);
    } catch (e) {
      err.textContent = errText(e, "Could not sign in.");
      err.hidden = false;
      submit.removeAttribute("disabled");
    }
  });
  deps.setView("Therapist sign-in", form);
  input.focus();
}

async function signedIn(deps: ConsoleDeps, token: string): Promise<void> {
  const conn = deps.connection();
  let name: string;
  try {
    if (!conn.connected) await conn.waitOnline();
    name = (await conn.signIn(token)).name;
  } catch (e) {
    if (e instanceof ChatError && e.code.startsWith("credential_")) sessionStorage.removeItem(STORE);
    signInForm(deps, errText(e, "Could not sign in."));
    return;
  }
  sessionForm(deps, name);
}

function field(id: string, label: string, input: HTMLElement, hint?: string): HTMLElement {
  input.id = id;
  if (hint) input.setAttribute("aria-describedby", `${id}-hint`);
  return h("div", { class: "field" }, h("label", { for: id }, label), input, hint ? h("p", { id: `${id}-hint`, class: "hint" }, hint) : null);
}

function sessionForm(deps: ConsoleDeps, name: string): void {
  const err = h("p", { class: "error", role: "alert", hidden: true });
  const title = h("input", { maxlength: "100", autocomplete: "off", required: true }) as HTMLInputElement;
  const start = h("input", { type: "datetime-local" }) as HTMLInputElement;
  const duration = h("input", { type: "number", min: "0", max: "600", step: "5", inputmode: "numeric" }) as HTMLInputElement;
  const capacity = h("input", { type: "number", min: "2", max: "100", value: "10", inputmode: "numeric" }) as HTMLInputElement;
  const lobby = h("input", { type: "checkbox", id: "s-lobby", checked: true }) as HTMLInputElement;
  const submit = h("button", { type: "submit" }, "Create session");
  const signOut = button("Sign out", () => {
    sessionStorage.removeItem(STORE);
    location.assign("/");
  }, "secondary");
  const form = h(
    "form",
    { class: "panel join", "aria-labelledby": "session-h", novalidate: true },
    h("h1", { id: "session-h" }, "New session"),
    h("p", { class: "verified" }, "Signed in as ", h("strong", {}, name), " (verified)"),
    field("s-title", "Title", title, "Encrypted: only people with the link can read it."),
    field("s-start", "Start time (optional)", start, "People can wait in the lobby before; you admit them from then."),
    field("s-duration", "Duration in minutes (optional)", duration, "Shows a timer with a five-minute warning."),
    field("s-capacity", "Capacity", capacity),
    h("div", { class: "choice" }, lobby, h("label", { for: "s-lobby" }, "Waiting room: I admit each person")),
    err,
    h("div", { class: "row" }, submit, signOut),
  ) as HTMLFormElement;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    err.hidden = true;
    if (!title.value.trim()) {
      err.textContent = "Please give the session a title.";
      err.hidden = false;
      title.focus();
      return;
    }
    submit.setAttribute("disabled", "");
    try {
      const conn = deps.connection();
      const startsAt = start.value ? new Date(start.value).getTime() / 1000 : undefined;
      const created = await conn.createSession({
        title: title.value.trim(),
        capacity: Number(capacity.value) || undefined,
        startsAt: startsAt && startsAt > Date.now() / 1000 ? startsAt : undefined,
        durationS: Number(duration.value) ? Number(duration.value) * 60 : undefined,
        lobby: lobby.checked,
      });
      ready(deps, created.url, created.hostLink);
    } catch (e) {
      if (e instanceof ChatError && e.code === "not_signed_in") {
        await signedIn(deps, sessionStorage.getItem(STORE) ?? "");
        return;
      }
      err.textContent = errText(e, "Could not create the session.");
      err.hidden = false;
      submit.removeAttribute("disabled");
    }
  });
  deps.setView("New session", form);
  title.focus();
}

function ready(deps: ConsoleDeps, url: string, hostLink: RoomLink): void {
  const copied = h("span", { class: "copied", role: "status" });
  const open = button("Open the session as host", async () => {
    open.setAttribute("disabled", "");
    await deps.enterRoom(hostLink);
  });
  deps.setView(
    "Session ready",
    h(
      "section",
      { class: "panel join", "aria-labelledby": "ready-h" },
      h("h1", { id: "ready-h" }, "Your session is ready"),
      field("share-link", "Link for participants", h("input", { readonly: true, value: url })),
      h("div", { class: "row" }, button("Copy link", async () => {
        try {
          await navigator.clipboard.writeText(url);
          copied.textContent = "Link copied.";
        } catch {
          copied.textContent = "Select the link and copy it.";
        }
      }, "secondary"), copied),
      h("p", { class: "notice" }, "The host seat stays in this tab only. Keep it open until the session ends."),
      open,
    ),
  );
}

// --- inside the room: host and moderator tools -----------------------------------------------

const STAFF = new Set(["host", "moderator", "therapist"]);

export class HostTools {
  toolbar = h("div", { class: "host-toolbar", role: "toolbar", "aria-label": "Host controls", hidden: true });
  panel = h("section", { class: "host-panel", "aria-labelledby": "host-h", hidden: true });
  timer = h("p", { class: "timer", role: "timer", "aria-live": "off", hidden: true });
  warning = h("p", { class: "timer-warning", role: "alert", hidden: true });
  lobbyList = h("ul", { class: "lobby-queue", "aria-label": "Waiting room" });
  lobbyCount = h("span", {});
  memberList = h("ul", { class: "member-actions" });
  reportList = h("ul", { class: "report-queue" });
  status = h("p", { class: "status-note", role: "status" });
  waiting = new Map<string, Record<string, any>>();
  reports = new Map<string, Record<string, any>>();
  #tick: number | undefined;
  #warned = false;
  #loaded = false;

  constructor(
    readonly room: RoomSession,
    readonly system: (text: string) => void,
  ) {
    room.staff = (name, data) => this.onStaff(name, data);
    this.panel.append(
      h("h2", { id: "host-h" }, "Host tools"),
      h("h3", {}, "Waiting room ", this.lobbyCount),
      button("Admit all", () => this.act(async () => {
        const n = await room.admitAll();
        this.say(n === 1 ? "1 person admitted." : `${n} people admitted.`);
        await this.loadLobby();
      }), "secondary small"),
      this.lobbyList,
      h("h3", {}, "Members"),
      this.memberList,
      h("h3", {}, "Reports"),
      this.reportList,
      this.status,
    );
    this.#tick = window.setInterval(() => this.renderTimer(), 1000);
    this.refresh();
  }

  get isStaff(): boolean {
    return STAFF.has(this.room.role);
  }
  get isHost(): boolean {
    return this.room.role === "host" || this.room.role === "therapist";
  }

  dispose(): void {
    window.clearInterval(this.#tick);
  }

  say(text: string): void {
    this.status.textContent = text;
  }

  async act(fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn();
    } catch (e) {
      this.say(e instanceof ChatError ? describeError(e.code) === describeError("?") ? `Refused (${e.code}).` : describeError(e.code) : "That did not work.");
    }
  }

  /** Members or settings changed: redraw everything that depends on them. */
  refresh(): void {
    const staff = this.isStaff;
    this.toolbar.hidden = !staff;
    this.panel.hidden = !staff;
    this.renderTimer();
    if (!staff) return;
    if (!this.#loaded) {
      this.#loaded = true;
      void this.loadLobby();
    }
    this.renderToolbar();
    this.renderMembers();
  }

  async loadLobby(): Promise<void> {
    try {
      const list = await this.room.lobbyList();
      this.waiting.clear();
      for (const w of list) if (w["status"] === "waiting") this.waiting.set(String(w["member_id"]), w);
      this.renderLobby();
    } catch {
      // not staff (yet) or no lobby: nothing to show
    }
  }

  onStaff(name: string, data: Record<string, any>): void {
    if (name === "lobby.waiting") {
      const w = data["waiter"] as Record<string, any>;
      const id = String(w["member_id"]);
      if (w["status"] === "waiting") {
        if (!this.waiting.has(id)) this.say(`${w["pseudonym"]} is waiting to be admitted.`);
        this.waiting.set(id, w);
      } else this.waiting.delete(id);
      this.renderLobby();
    } else if (name === "report") {
      const r = data["report"] as Record<string, any>;
      const key = [...(r["digest"] as Uint8Array)].join(",");
      this.reports.set(key, r);
      this.say(`New report: ${r["reason"]}.`);
      this.renderReports();
    }
  }

  renderLobby(): void {
    this.lobbyCount.textContent = `(${this.waiting.size})`;
    if (!this.waiting.size) {
      this.lobbyList.replaceChildren(h("li", { class: "muted" }, "Nobody is waiting."));
      return;
    }
    this.lobbyList.replaceChildren(
      ...[...this.waiting.values()].map((w) => {
        const id = String(w["member_id"]);
        const who = String(w["pseudonym"]);
        return h(
          "li",
          { "data-waiter": id },
          h("span", { class: "name" }, who),
          " ",
          button("Admit", () => this.act(async () => {
            await this.room.admit(id, w["card"] as Uint8Array);
            this.waiting.delete(id);
            this.renderLobby();
          }), "small", `Admit ${who}`),
          button("Decline", () => this.act(async () => {
            await this.room.control("lobby.decline", { member_id: id });
            this.waiting.delete(id);
            this.renderLobby();
          }), "secondary small", `Decline ${who}`),
        );
      }),
    );
  }

  renderMembers(): void {
    const rows: HTMLElement[] = [];
    for (const [id, m] of this.room.members) {
      if (id === this.room.memberId) continue;
      const who = m.pseudonym;
      const ctl = (ev: string, fields: Record<string, unknown> = {}) => () =>
        this.act(async () => {
          await this.room.control(ev, { member_id: id, ...fields });
        });
      rows.push(
        h(
          "li",
          { "data-member": id },
          h("span", { class: "name" }, who),
          m.role !== "member" ? h("span", { class: "tag" }, ` · ${m.role}`) : null,
          h(
            "span",
            { class: "actions" },
            button("Mute", ctl("member.mute"), "secondary small", `Mute ${who}`),
            button("Unmute", ctl("member.unmute"), "secondary small", `Unmute ${who}`),
            button("Remove", ctl("member.remove"), "secondary small", `Remove ${who}`),
            this.isHost && m.role === "member" ? button("Promote", ctl("member.role", { role: "moderator" }), "secondary small", `Make ${who} a moderator`) : null,
          ),
        ),
      );
    }
    this.memberList.replaceChildren(...(rows.length ? rows : [h("li", { class: "muted" }, "Nobody else is here yet.")]));
  }

  renderReports(): void {
    this.reportList.replaceChildren(
      ...[...this.reports.values()].map((r) => {
        const body = r["body"] as Uint8Array;
        let text = "";
        try {
          text = String(JSON.parse(new TextDecoder().decode(body.slice(9)))["text"] ?? "");
        } catch {
          text = "(not a text message)";
        }
        const who = String(r["sender_pseudonym"]);
        const review = (hide: boolean) => () => this.act(async () => {
          await this.room.control("report.review", { digest: r["digest"], hide });
          this.say(hide ? "Hidden for everyone." : "Restored.");
        });
        return h(
          "li",
          { class: "report" },
          h("p", { class: "meta" }, `${r["reason"]} · from ${who} · ${r["reporters"]} report(s)${r["hidden"] ? " · hidden" : ""}`),
          h("blockquote", { class: "text" }, text),
          h("p", { class: "hint" }, "Verified: the server confirmed this exact text was sent by this person."),
          button("Hide", review(true), "secondary small"),
          button("Restore", review(false), "secondary small"),
          button("Remove sender", () => this.act(() => this.room.control("member.remove", { member_id: r["sender_id"] })), "secondary small", `Remove ${who}`),
        );
      }),
    );
  }

  renderToolbar(): void {
    const v = this.room.view;
    const locked = v["state"] === "locked";
    const paused = Boolean(v["paused"]);
    const slow = Number(v["slow_mode_s"] ?? 0);
    const set = (fields: Record<string, unknown>) => () =>
      this.act(async () => {
        const ack = await this.room.control("room.settings", fields);
        Object.assign(this.room.view, ack["room"] ?? {});
        this.refresh();
      });
    const slowSel = h("select", { id: "slow-mode", "aria-label": "Slow mode" },
      ...[0, 10, 30, 60, 300].map((s) => h("option", { value: String(s), selected: s === slow }, s ? `Slow mode: ${s} s` : "Slow mode: off")),
    ) as HTMLSelectElement;
    slowSel.addEventListener("change", set({ get slow_mode_s() { return Number(slowSel.value); } }));
    const end = button("End session", () => {
      const confirm = h(
        "div",
        { class: "confirm", role: "alertdialog", "aria-labelledby": "end-q" },
        h("p", { id: "end-q" }, "End the session for everyone? The conversation is deleted for all."),
        button("Yes, end it for everyone", () => this.act(() => this.room.control("room.end")), "danger"),
        button("Cancel", () => this.renderToolbar(), "secondary"),
      );
      this.toolbar.replaceChildren(confirm);
      (confirm.querySelector("button") as HTMLButtonElement).focus();
    }, "danger");
    this.toolbar.replaceChildren(
      ...[button(locked ? "Unlock" : "Lock", set({ locked: !locked }), "secondary", locked ? "Unlock the room" : "Lock the room"),
      button(paused ? "Resume" : "Pause", set({ paused: !paused }), "secondary", paused ? "Resume the chat" : "Pause the chat"),
      slowSel,
      this.isHost || this.room.kind !== "session" ? end : null].filter((x): x is HTMLButtonElement | HTMLSelectElement => x !== null),
    );
  }

  renderTimer(): void {
    const v = this.room.view;
    const duration = Number(v["duration_s"] ?? 0);
    if (!duration) return;
    const start = Number(v["starts_at"] ?? v["created_at"] ?? 0) * 1000;
    const now = Date.now();
    this.timer.hidden = false;
    if (now < start) {
      this.timer.textContent = `Starts at ${TIME(start)}`;
      return;
    }
    const left = Math.max(0, Math.round((start + duration * 1000 - now) / 1000));
    const mm = Math.floor(left / 60);
    const ss = String(left % 60).padStart(2, "0");
    this.timer.textContent = left ? `Time left: ${mm}:${ss}` : "Time is up";
    this.timer.classList.toggle("warn", left <= 300);
    if (left <= 300 && !this.#warned) {
      this.#warned = true;
      this.warning.hidden = false;
      this.warning.textContent = left ? "Five minutes left in this session." : "The session's time is up.";
    }
  }
}

// --- participants: waiting room and closing card ----------------------------------------------

export async function waitingRoom(deps: ConsoleDeps, link: RoomLink, nickname: string | undefined, onAdmitted: (w: Waiting) => void): Promise<void> {
  const conn = deps.connection();
  const w = await conn.knock(link, nickname, true);
  const info = w.info;
  let title = "A session with a therapist";
  if (info["title"] instanceof Uint8Array && link.secret) {
    try {
      title = openMeta(link.secret.metaKey, link.secret.roomId, info["title"]);
    } catch {
      // keep the generic title
    }
  }
  const host = h("p", { class: "verified" }, "Checking the host's badge…");
  const startsAt = Number(info["starts_at"] ?? 0);
  const state = h("p", { role: "status", class: "notice" }, "You are in the waiting room. The host will let you in soon.");
  const leave = button("Leave the waiting room", () => location.assign("/"), "secondary");
  deps.setView(
    "Waiting room",
    h(
      "section",
      { class: "panel join waiting-room", "aria-labelledby": "wait-h" },
      h("h1", { id: "wait-h" }, title),
      host,
      startsAt ? h("p", {}, `Starts at ${TIME(startsAt * 1000)}`) : null,
      info["duration_s"] ? h("p", {}, `Planned length: ${Math.round(Number(info["duration_s"]) / 60)} minutes`) : null,
      h("p", {}, "You appear as ", h("strong", {}, w.pseudonym), "."),
      state,
      leave,
    ),
  );
  try {
    const { key } = await serverKey();
    const cred = verifyBadge(key, info["badge"] as Uint8Array, unb64id(link.roomId), unb64id(String(info["host_id"])));
    host.textContent = `Host: ${cred.name} (verified therapist)`;
  } catch {
    host.textContent = "The host's badge could not be verified.";
  }
  w.onDecision = (admitted, reason) => {
    if (admitted) onAdmitted(w);
    else {
      state.textContent = reason === "ended" ? "The session has ended." : "The host could not admit you to this session.";
      closing(deps, reason === "ended" ? "The session has ended." : "You were not admitted to this session.");
    }
  };
  if (w.decided) w.onDecision(w.decided.admitted, w.decided.reason);
}

/** The closing card: shown when a session ends (or a waiter is turned away). */
export function closingCard(heading: string): HTMLElement {
  return h(
    "section",
    { class: "panel closing-card", "aria-labelledby": "closing-h" },
    h("h2", { id: "closing-h" }, heading),
    h("p", {}, "Thank you for being here. Nothing of this conversation is kept: every key has been discarded."),
    h("h3", {}, "If you need support now"),
    h(
      "ul",
      {},
      h("li", {}, "If you are in danger, call your local emergency number."),
      h("li", {}, "Use “Get help now” at the top of the page for crisis lines where you are."),
      h("li", {}, "Talk with others: open peer-support rooms are always listed on the home page."),
    ),
    h("a", { class: "button", href: "/", "data-nav": "/" }, "See open rooms"),
  );
}

function closing(deps: ConsoleDeps, heading: string): void {
  deps.setView("Session ended", closingCard(heading));
}
