// Inside the room, the host and moderator tools (docs/moderation.md): lobby queue, member actions,
// room controls, timer, report queue, questions, pins, end session. Every piece of data reaches the
// DOM as text, never as HTML.
import { ChatError, type Question, type RoomSession, describeError, rulesTooLong } from "../client.js";
import { button, clock, dayClock, field, h } from "../dom.js";
import { pinMessageForm, pinResourcesForm } from "../room/pin.js";
import { questionItem } from "../room/qa.js";
import { memberRow } from "./members.js";
import { reportBody } from "./report.js";

const STAFF = new Set(["host", "moderator", "therapist"]);

const FOCUSABLE = "button:not([disabled]), [href], input:not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex='-1'])";

/** A panel that is a sheet on phones (an overlay its toggle opens): the toggle says whether it is
 * open (aria-expanded), focus moves into it, Escape or a close button closes it and gives focus
 * back to the toggle, and a tap outside closes it. On wider screens the toggle is hidden by CSS
 * and the panel is part of the page. */
export function sheet(toggle: HTMLElement, panel: HTMLElement, closer?: HTMLElement): { close(focus: boolean): void } {
  if (!panel.id) panel.id = `sheet-${Math.random().toString(36).slice(2, 8)}`;
  toggle.setAttribute("aria-expanded", "false");
  toggle.setAttribute("aria-controls", panel.id);
  const shown = (el: HTMLElement) => el.getClientRects().length > 0;
  const close = (focus: boolean) => {
    if (toggle.getAttribute("aria-expanded") !== "true") return;
    toggle.setAttribute("aria-expanded", "false");
    panel.classList.remove("open");
    if (focus && shown(toggle)) toggle.focus();
  };
  const open = () => {
    toggle.setAttribute("aria-expanded", "true");
    panel.classList.add("open");
    const first = [...panel.querySelectorAll<HTMLElement>(FOCUSABLE)].find(shown);
    (first ?? panel).focus();
  };
  toggle.addEventListener("click", () => (toggle.getAttribute("aria-expanded") === "true" ? close(true) : open()));
  closer?.addEventListener("click", () => close(true));
  panel.addEventListener("keydown", (ev) => {
    if (ev.key !== "Escape" || toggle.getAttribute("aria-expanded") !== "true") return;
    ev.preventDefault();
    ev.stopPropagation();
    close(true);
  });
  const outside = (ev: PointerEvent) => {
    if (!panel.isConnected) {
      document.removeEventListener("pointerdown", outside);
      return;
    }
    const t = ev.target as Node | null;
    if (!t || panel.contains(t) || toggle.contains(t)) return;
    close(false);
  };
  document.addEventListener("pointerdown", outside);
  return { close };
}

export class HostTools {
  static sheet = sheet;
  toolbar = h("div", { class: "host-toolbar", role: "toolbar", "aria-label": "Host controls", hidden: true });
  /** The controls themselves; in a session, on phones, collapsed behind `toggle` ("Host tools"). */
  items = h("div", { class: "tools-items", id: "host-tools-items" });
  toggle: HTMLElement | null = null;
  panel = h("section", { class: "host-panel", "aria-labelledby": "host-h", hidden: true });
  timer = h("p", { class: "timer", role: "timer", "aria-live": "off", hidden: true });
  warning = h("p", { class: "timer-warning", role: "alert", hidden: true });
  endsAt = h("p", { class: "ends-at", hidden: true });
  lobbyList = h("ul", { class: "lobby-queue", "aria-label": "Waiting room" });
  lobbyCount = h("span", {});
  memberList = h("ul", { class: "member-actions" });
  reportList = h("ul", { class: "report-queue" });
  questionList = h("ul", { class: "question-queue", "aria-label": "Questions" });
  questions = h("div", { class: "questions", hidden: true }, h("h3", {}, "Questions"), this.questionList);
  #asked: Question[] = [];
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
    // Session tools (waiting room, Q&A, timer, End session) only in a session; a peer room's
    // starter gets what a peer room needs: lock, pause, slow mode, mute and remove, reports.
    const session = room.kind === "session";
    if (!session) this.toolbar.setAttribute("aria-label", "Room controls");
    else {
      // Many controls: on a phone they wait behind one button, so the first screen is the conversation.
      this.toggle = h("button", { type: "button", class: "secondary small tools-toggle" }, "Host tools");
      this.toolbar.classList.add("collapsible");
      this.toolbar.append(this.toggle);
      sheet(this.toggle, this.items);
    }
    this.toolbar.append(this.items);
    this.panel.append(
      h("h2", { id: "host-h" }, session ? "Host tools" : "Room tools"),
      ...(session
        ? [
            h("h3", {}, "Waiting room ", this.lobbyCount),
            button("Admit all", () => this.act(async () => {
              const n = await room.admitAll();
              this.say(n === 1 ? "1 person admitted." : `${n} people admitted.`);
              await this.loadLobby();
            }), "secondary small"),
            this.lobbyList,
            this.questions,
          ]
        : []),
      h("h3", {}, "Members"),
      this.memberList,
      h("h3", {}, "Reports"),
      this.reportList,
      this.status,
    );
    this.renderQuestions();
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
      this.say(e instanceof ChatError ? describeError(e.code) : "That did not work. Please try again.");
    }
  }

  /** Members or settings changed: redraw everything that depends on them. */
  refresh(): void {
    const staff = this.isStaff;
    this.toolbar.hidden = !staff;
    this.panel.hidden = !staff;
    this.renderTimer();
    if (!staff) return;
    if (!this.#loaded && this.room.kind === "session") {
      this.#loaded = true;
      void this.loadLobby();
    }
    this.questions.hidden = !this.isHost || this.room.kind !== "session";
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
    } else if (name === "qa.question") {
      void this.room.openQuestion(data).then((q) => {
        if (!q) return;
        this.#asked.push(q);
        this.say(`New question from ${q.pseudonym}.`);
        this.renderQuestions();
      });
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
    const act = (fn: () => Promise<unknown>) => this.act(fn);
    // A row whose "Remove …?" confirmation is open stays as it is until it is answered.
    const confirming = new Map<string, HTMLElement>();
    for (const row of this.memberList.querySelectorAll<HTMLElement>("li[data-member]")) {
      if (row.querySelector(".confirm")) confirming.set(row.dataset["member"] ?? "", row);
    }
    for (const [id, m] of this.room.members) {
      if (id === this.room.memberId) continue;
      rows.push(confirming.get(id) ?? memberRow(this.room, id, m, act, (t) => this.say(t)));
    }
    this.memberList.replaceChildren(...(rows.length ? rows : [h("li", { class: "muted" }, "Nobody else is here yet.")]));
  }

  renderQuestions(): void {
    if (!this.#asked.length) {
      this.questionList.replaceChildren(h("li", { class: "muted" }, "No questions yet."));
      return;
    }
    this.questionList.replaceChildren(
      ...this.#asked.map((q) => questionItem(this.room, q, () => {
        this.#asked = this.#asked.filter((x) => x !== q);
        this.say("Answer sent to everyone.");
        this.renderQuestions();
      })),
    );
  }

  renderReports(): void {
    this.reportList.replaceChildren(
      ...[...this.reports.values()].map((r) => {
        const body = r["body"] instanceof Uint8Array ? r["body"] : new Uint8Array(0);
        const who = String(r["sender_pseudonym"]);
        const review = (hide: boolean) => () => this.act(async () => {
          await this.room.control("report.review", { digest: r["digest"], hide });
          this.say(hide ? "Hidden for everyone." : "Restored.");
        });
        return h(
          "li",
          { class: "report" },
          h("p", { class: "meta" }, `${r["reason"]} · from ${who} · ${r["reporters"]} report(s)${r["hidden"] ? " · hidden" : ""}`),
          reportBody(body),
          h("p", { class: "hint" }, "Verified: the server confirmed this exact message, every field shown, was sent by this person."),
          button("Hide", review(true), "secondary small"),
          button("Restore", review(false), "secondary small"),
          button("Remove sender", () => this.act(() => this.room.control("member.remove", { member_id: r["sender_id"] })), "secondary small", `Remove ${who}`),
        );
      }),
    );
  }

  /** An open form in the toolbar (end confirm, rules editor): redraws wait until it closes. */
  #open: HTMLElement | null = null;

  #openInToolbar(el: HTMLElement): void {
    this.#open = el;
    this.items.replaceChildren(el);
    (el.querySelector("textarea, button") as HTMLElement | null)?.focus();
  }
  #closeToolbar(): void {
    const had = this.items.contains(document.activeElement);
    this.#open = null;
    this.renderToolbar();
    // The form that had the focus is gone: focus stays in the toolbar, not lost to the page.
    if (had || document.activeElement === document.body) {
      [...this.items.querySelectorAll<HTMLElement>("button")].find((b) => b.getClientRects().length > 0)?.focus();
    }
  }

  renderToolbar(): void {
    if (this.#open) return;
    const v = this.room.view;
    const locked = v["state"] === "locked";
    const paused = Boolean(v["paused"]);
    const slow = Number(v["slow_mode_s"] ?? 0);
    const qa = Boolean(v["qa"]);
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
      this.#openInToolbar(h(
        "div",
        { class: "confirm", role: "alertdialog", "aria-labelledby": "end-q" },
        h("p", { id: "end-q" }, "End the session for everyone? The conversation is deleted for all."),
        button("Yes, end it for everyone", () => this.act(() => this.room.control("room.end")), "danger"),
        button("Cancel", () => this.#closeToolbar(), "secondary"),
      ));
    }, "danger");
    const duration = Number(v["duration_s"] ?? 0);
    const extend = button("Extend 15 min", set({ duration_s: duration + 900 }), "secondary");
    const pinDone = (p: Promise<void>) => this.act(async () => {
      await p;
      this.say("Pinned for everyone.");
      this.#closeToolbar();
    });
    const pinMsg = button("Pin a message", () => this.#openInToolbar(pinMessageForm((t) => pinDone(this.room.pin(t)), () => this.#closeToolbar())), "secondary");
    const pinRes = button("Pin resources", () => this.#openInToolbar(pinResourcesForm((t, l) => pinDone(this.room.pin(t, l)), () => this.#closeToolbar())), "secondary");
    const unpin = button("Unpin", () => this.act(async () => {
      await this.room.unpin();
      this.say("Unpinned.");
    }), "secondary", "Unpin the pinned message");
    const qaToggle = button("Q&A mode", set({ qa: !qa }), "secondary");
    qaToggle.setAttribute("aria-pressed", String(qa));
    const basics: HTMLElement[] = [
      button(locked ? "Unlock" : "Lock", set({ locked: !locked }), "secondary", locked ? "Unlock the room" : "Lock the room"),
      button(paused ? "Resume" : "Pause", set({ paused: !paused }), "secondary", paused ? "Resume the chat" : "Pause the chat"),
      slowSel,
    ];
    if (this.room.kind !== "session") {
      this.items.replaceChildren(...basics);
      return;
    }
    const items: Array<HTMLElement | null> = [
      ...basics,
      this.isHost ? qaToggle : null,
      this.isHost && duration ? extend : null,
      pinMsg,
      pinRes,
      this.room.pinned ? unpin : null,
      button("Edit ground rules", () => this.#openInToolbar(this.rulesEditor()), "secondary"),
      this.isHost ? end : null,
    ];
    this.items.replaceChildren(...items.filter((x): x is HTMLElement => x !== null));
  }

  /** The ground-rules editor: empty text removes them (sealed with the link's meta key if private). */
  rulesEditor(): HTMLElement {
    const err = h("p", { class: "error", role: "alert", hidden: true });
    const text = h("textarea", { id: "rules-edit", rows: "4", maxlength: "2048" }) as HTMLTextAreaElement;
    text.value = this.room.rules() ?? "";
    const form = h(
      "form",
      { class: "confirm rules-editor", "aria-label": "Edit ground rules" },
      h("label", { for: "rules-edit" }, "Ground rules"),
      text,
      h("p", { class: "hint" }, "Everyone sees them; leave empty to remove them."),
      err,
      h("div", { class: "row" }, h("button", { type: "submit" }, "Save ground rules"), button("Cancel", () => this.#closeToolbar(), "secondary")),
    ) as HTMLFormElement;
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const value = text.value.trim();
      if (rulesTooLong(this.room.secret !== null, value)) {
        err.textContent = "These ground rules are too long. Please shorten them.";
        err.hidden = false;
        return;
      }
      void this.act(async () => {
        await this.room.setRules(value);
        this.say(value ? "Ground rules saved." : "Ground rules removed.");
        this.#closeToolbar();
      });
    });
    return form;
  }

  renderTimer(): void {
    if (this.room.kind !== "session") return;
    const v = this.room.view;
    const duration = Number(v["duration_s"] ?? 0);
    if (!duration) return;
    const start = Number(v["starts_at"] ?? v["created_at"] ?? 0) * 1000;
    const now = Date.now();
    this.timer.hidden = false;
    // One end time, said once: the countdown runs to the planned end (or to the server's automatic
    // end if that comes first), and says what time that is. The automatic end is shown only when
    // it is later (the overrun grace), saying how much later, so the two never contradict.
    const auto = Number(v["ends_at"] ?? 0) * 1000;
    const planned = start + duration * 1000;
    const end = auto ? Math.min(planned, auto) : planned;
    const grace = auto ? Math.round((auto - end) / 60000) : 0;
    this.endsAt.hidden = !auto;
    if (auto) {
      this.endsAt.textContent = grace > 0
        ? `Ends automatically at ${clock(auto)} if still open (${grace} min grace).`
        : `Ends automatically at ${clock(auto)}.`;
    }

    if (now < start) {
      this.timer.textContent = `Starts at ${dayClock(start)}`;
      return;
    }
    const left = Math.max(0, Math.round((end - now) / 1000));
    if (left > 300 && this.#warned) {
      // Extended: a new warning comes five minutes before the new end.
      this.#warned = false;
      this.warning.hidden = true;
    }
    const mm = Math.floor(left / 60);
    const ss = String(left % 60).padStart(2, "0");
    this.timer.textContent = left ? `Time left: ${mm}:${ss}, until ${clock(end)}` : `Time is up (planned end ${clock(end)})`;
    this.timer.dataset["end"] = String(end);
    this.timer.classList.toggle("warn", left <= 300);
    if (left <= 300 && !this.#warned) {
      this.#warned = true;
      this.warning.hidden = false;
      this.warning.textContent = left ? "Five minutes left in this session." : "The session's time is up.";
    }
  }
}
