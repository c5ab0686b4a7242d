// The room on screen: the conversation, the composer, who is here, and the room's tools. It is the
// RoomSession's listener (client.ts): every push the session has checked lands here as a method call.
// No #private fields here: safety.listen() wraps the view in a Proxy, and its methods run with the
// proxy as `this`, which has no private slots.
import type { OwnMessage, Pin, RoomListener, RoomSession, SeatInfo } from "../client.js";
import { HostTools, closingCard } from "../console/index.js";
import { mutedText } from "../console/members.js";
import { clock, h } from "../dom.js";
import { hex } from "../e2ee/primitives.js";
import { type ShownRoom, alertBox, connection, main, nextId, onLeaveView, route, setView, shell, showError } from "../page.js";
import { safety } from "../safety/index.js";
import { clearSeat, saveRoomState, saveSeat } from "../seats.js";
import type { RoomLink } from "../wire.js";
import { setHidden } from "./hidden.js";
import { PinPanel } from "./pin.js";
import { askForm, quoteBlock } from "./qa.js";
import { reportAction } from "./report.js";
import { RulesPanel } from "./rules.js";
import { RoomStatus, confirmLeave, endedText, errorText } from "./states.js";
import { type Entry, Transcript } from "./transcript.js";
import { verifiedHostName } from "../console/credentials.js";

function describeVanish(seconds: number): string {
  if (seconds % 86400 === 0) return seconds === 86400 ? "a day" : `${seconds / 86400} days`;
  if (seconds % 3600 === 0) return seconds === 3600 ? "an hour" : `${seconds / 3600} hours`;
  const minutes = Math.max(1, Math.round(seconds / 60));
  return minutes === 1 ? "a minute" : `${minutes} minutes`;
}

export class RoomView implements RoomListener, ShownRoom {
  room!: RoomSession;
  log = h("ol", { class: "log-list" });
  logBox = h("div", { class: "log", role: "log", "aria-live": "polite", "aria-relevant": "additions", "aria-label": "Messages", tabindex: "0" }, this.log);
  typingEl = h("p", { class: "typing", "aria-live": "polite" });
  peopleList = h("ul", { class: "people" });
  peopleCount = h("span", {});
  youEl = h("span", {});
  safetyEl = h("p", { class: "safety-code" });
  ownEls = new Map<number, HTMLElement>();
  seen = new Set<number>();
  typers = new Map<string, number>();
  input!: HTMLTextAreaElement;
  stateNote = h("p", { class: "status-note", role: "status" });
  safetyTimer: number | undefined;
  tools: HostTools | null = null;
  /** Message elements by envelope digest (hex), for `msg.hidden`. */
  byDigest = new Map<string, HTMLElement>();
  rules = new RulesPanel();
  pin = new PinPanel();
  /** Ticked "I accept these ground rules" (in the waiting room, or here). */
  rulesAccepted = false;
  composer!: HTMLFormElement;
  askEl!: HTMLFormElement;
  muteNote = h("p", { class: "mute-note", role: "status" });
  /** The room's state, said at the composer (room/states.ts). */
  status!: RoomStatus;
  muteTimer: number | undefined;
  qaOn: boolean | null = null;
  /** The conversation as shown, kept for a reload (room/transcript.ts). */
  transcript: Transcript | null = null;
  private persistTimer: number | undefined;
  /** Rendering what a reload brought back: not written again, no help offers. */
  private restoring = false;
  /** A session's therapist: the host seat's id and the name its badge verifies (null: unchecked
   * or not verified, and then nobody is shown as a therapist). */
  therapist: { id: string; name: string } | null = null;

  /** Show the room. `restored`: what this tab showed before a reload (the seat came back). */
  mount(room: RoomSession, restored?: Transcript): void {
    this.room = room;
    this.transcript = restored ?? new Transcript(room.roomId);
    shell.roomView = this;
    this.status = new RoomStatus(room);
    const name = room.title || room.topic || "Private room";
    const msgId = nextId("msg");
    this.input = h("textarea", { id: msgId, rows: "2", maxlength: "4000", autocomplete: "off", "aria-describedby": "copy-notice" }) as HTMLTextAreaElement;
    const send = h("button", { type: "submit" }, "Send");
    const composer = <HTMLFormElement>h("form", { class: "composer", "aria-label": "Write a message" }, h("label", { for: msgId, class: "visually-hidden" }, "Message"), this.input, send);
    composer.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const text = this.input.value.trim();
      if (!text) return;
      this.input.value = "";
      room.typing(false);
      room.send(text, safety.extra());
      this.input.focus();
    });
    this.input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        composer.requestSubmit();
      }
    });
    let idle: number | undefined;
    this.input.addEventListener("input", () => {
      if (!this.input.value) return;
      room.typing(true);
      window.clearTimeout(idle);
      idle = window.setTimeout(() => room.typing(false), 4000);
    });

    const actions = h("div", { class: "room-actions", "data-slot": "room-actions" });
    if (room.secret) {
      const copy = h("button", { type: "button", class: "secondary" }, "Copy invite link");
      const copied = h("span", { class: "copied", role: "status" });
      copy.addEventListener("click", async () => {
        const url = room.inviteLink();
        try {
          await navigator.clipboard.writeText(url);
          copied.textContent = "Link copied. Share it only with people you trust.";
        } catch {
          copied.textContent = "Could not copy automatically. Select the link in “About this room” and copy it.";
        }
      });
      actions.append(copy, copied);
    }
    const leave = h("button", { type: "button", class: "secondary" }, "Leave");
    const goAway = async () => {
      clearSeat(room.roomId);
      await room.leave();
      shell.current = null;
      history.replaceState(null, "", "/");
      route();
      safety.left(main);
    };
    leave.addEventListener("click", () => {
      // A session's host leaving: say what happens to the group first (Cancel has the focus).
      if (room.kind === "session" && (room.role === "host" || room.role === "therapist") && !room.closed) confirmLeave(room, () => void goAway());
      else void goAway();
    });
    actions.append(leave);

    const renameForm = this.renameForm();
    const side = h(
      "aside",
      { class: "side", "aria-label": "About this room" },
      h("section", { "aria-labelledby": "people-h" }, h("h2", { id: "people-h" }, "Who is here ", this.peopleCount), this.peopleList),
      h("section", { "aria-labelledby": "you-h" }, h("h2", { id: "you-h" }, "You"), h("p", {}, "You appear as ", this.youEl, "."), renameForm),
      this.protection(),
    );
    const toggle = h("button", { type: "button", class: "secondary small side-toggle" }, "About this room");
    side.id = "room-side";
    actions.prepend(toggle);

    this.tools = new HostTools(room, (text) => this.system(text));
    actions.append(this.tools.toolbar);
    side.prepend(this.tools.panel);
    // On a phone "About this room" is a sheet over the conversation (style.css): Close or Escape.
    const closeSide = h("button", { type: "button", class: "secondary small sheet-close" }, "Close");
    side.prepend(closeSide);
    HostTools.sheet(toggle, side, closeSide);
    const header = h(
      "div",
      { class: "room-head" },
      h("h1", {}, name),
      h(
        "div",
        { class: "room-info" },
        h("p", { class: "meta" }, room.kind === "session" ? "Session with a therapist" : room.secret ? "Private peer-support room" : "Peer-support room"),
        this.tools.timer,
        this.tools.endsAt,
      ),
      this.tools.warning,
      actions,
    );
    const vanishing = room.disappearAfterS
      ? ` Messages here disappear ${describeVanish(room.disappearAfterS)} after they are sent.`
      : "";
    const notice = h("p", { id: "copy-notice", class: "notice small" }, `Encrypted on your device. Anyone in the room can still copy what you write.${vanishing}`);
    this.composer = composer;
    this.askEl = askForm(room);
    this.rules.onAccept = () => {
      this.rulesAccepted = true;
      const seat = room.seat();
      if (seat) saveSeat(room.link, seat, true);
      this.applyMode();
      this.input.focus();
    };
    const chat = h("section", { class: "chat", "aria-labelledby": "log-h" }, h("h2", { id: "log-h", class: "visually-hidden" }, "Conversation"), this.rules.el, this.pin.el, this.logBox, this.typingEl, this.stateNote, this.muteNote, notice, this.status.el, composer, this.askEl);
    setView(name, h("div", { class: "room" }, header, h("div", { class: "room-body" }, chat, side)));
    if (!restored) this.system(`You joined as ${room.pseudonym}. Be gentle with yourself and others.`);
    this.pin.show(room.pinned);
    this.members();
    this.applyMode();
    safety.mount(room, { input: this.input, composer, people: this.peopleList, log: this.log });
    if (restored) this.replay(restored.entries);
    this.checkTherapist();
    const going = () => this.persist(true);
    window.addEventListener("pagehide", going);
    const tick = window.setInterval(() => this.expireTyping(), 1000);
    const tools = this.tools;
    const status = this.status;
    status.connection(connection().connected ? "online" : "offline");
    status.render();
    onLeaveView(() => {
      status.dispose();
      if (shell.roomView === this) shell.roomView = null;
      window.clearInterval(tick);
      window.clearTimeout(this.muteTimer);
      window.clearTimeout(this.persistTimer);
      window.removeEventListener("pagehide", going);
      tools.dispose();
    });
    this.input.focus();
  }

  connection(state: string): void {
    this.status.connection(state);
  }

  renameForm(): HTMLElement {
    const id = nextId("rename");
    const input = h("input", { id, maxlength: "32", autocomplete: "off", spellcheck: "false" }) as HTMLInputElement;
    const err = alertBox();
    const form = h("form", { class: "rename" }, h("label", { for: id }, "Change your name"), h("div", { class: "row" }, input, h("button", { type: "submit", class: "secondary" }, "Change")), err);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      err.hidden = true;
      const value = input.value.trim();
      if (!value) return;
      try {
        await this.room.rename(value);
        input.value = "";
        this.system(`You are now ${this.room.pseudonym}.`);
      } catch (e) {
        showError(err, errorText(e, "Could not change your name."));
      }
    });
    return form;
  }

  protection(): HTMLElement {
    const linkRow = this.room.secret
      ? h("div", { class: "field" }, h("label", { for: "invite-link" }, "Invite link"), h("input", { id: "invite-link", readonly: true, value: this.room.inviteLink() }))
      : null;
    return h(
      "section",
      { "aria-labelledby": "protect-h" },
      h("h2", { id: "protect-h" }, "How your messages are protected"),
      h("p", {}, "What you write is encrypted on this device before it is sent. The server passes it on but cannot read it. Everyone here gets fresh keys when someone leaves, and newcomers cannot read what was said before they came."),
      h("p", {}, "Others in the room can read, copy or screenshot your messages. Nothing is stored after the room ends."),
      h("h3", {}, "Safety code"),
      h("p", {}, "Everyone here should see the same code. If you want to be sure nobody is listening in, compare it with others another way (for example in person)."),
      this.safetyEl,
      linkRow,
    );
  }

  // listener

  at(seq: number, el: HTMLElement): void {
    // Keep the list in server order; a late own message never moves others around.
    el.dataset["seq"] = String(seq);
    this.log.append(el);
    this.scroll();
  }

  scroll(): void {
    const box = this.logBox;
    box.scrollTop = box.scrollHeight;
  }

  system(text: string, seq?: number): void {
    if (!this.restoring) this.transcript?.note(text, seq);
    const el = h("li", { class: "system" }, h("p", {}, text));
    if (seq !== undefined) this.at(seq, el);
    else {
      this.log.append(el);
      this.scroll();
    }
  }

  message(m: { seq: number; ts: number; senderId: string; pseudonym: string; text: string; extra: Record<string, unknown>; digest: string }): void {
    if (this.seen.has(m.seq)) return;
    this.seen.add(m.seq);
    if (!this.restoring) this.transcript?.message(m);
    this.typers.delete(m.senderId);
    this.renderTyping();
    const el = h(
      "li",
      { class: "msg" },
      h("p", { class: "who" }, this.nameOf(m.senderId, m.pseudonym), " ", h("time", { datetime: new Date(m.ts).toISOString() }, clock(m.ts))),
      // m.senderId is the envelope's signed sender (client.ts): a quote only from a current host,
      // by its trusted role (the owner, or a co-host a host signed for), never the server's label.
      quoteBlock(m.extra, this.room.trustedRole(m.senderId)),
      h("p", { class: "text" }, m.text),
    );
    const report = reportAction(this.room, m.digest, m.pseudonym, m.text);
    if (report) el.append(report);
    this.byDigest.set(m.digest, el);
    safety.message(el, m, this.restoring);
    this.at(m.seq, el);
    this.persist();
  }

  /** A sender's name: a session's verified therapist by the badge's name, with the badge. */
  nameOf(id: string, pseudonym: string): HTMLElement {
    const t = this.therapist;
    if (t && t.id === id) {
      return h("span", { class: "name therapist", "data-therapist": "" }, t.name, h("span", { class: "badge verified" }, " ✓ Verified therapist"));
    }
    return h("span", { class: "name" }, pseudonym);
  }

  /** In a session, check the host's badge as the waiting room does (the server's key, bound to
   * this room and the host seat), then show the therapist by name on messages and in the list. */
  checkTherapist(): void {
    const room = this.room;
    const hostId = room.view["host_id"];
    if (room.kind !== "session" || typeof hostId !== "string") return;
    void verifiedHostName(room.view["badge"], room.roomId, hostId).then((name) => {
      if (!name || room.closed || shell.roomView !== this) return;
      this.therapist = { id: hostId, name };
      for (const el of this.log.querySelectorAll<HTMLElement>("li.msg")) {
        const who = el.querySelector(".who .name");
        if (el.dataset["from"] === hostId && who) who.replaceWith(this.nameOf(hostId, who.textContent ?? ""));
      }
      this.members();
    });
  }

  /** What a reload brought back, in the order it was shown. */
  replay(entries: Entry[]): void {
    this.restoring = true;
    try {
      for (const e of entries) {
        if (e.k === "note") this.system(e.text, e.seq);
        else if (e.k === "msg") {
          this.message({ seq: e.seq, ts: e.ts, senderId: e.from, pseudonym: e.name, text: e.text, extra: e.extra, digest: e.digest });
          if (e.hidden) this.setHidden(e.digest, true);
        } else {
          this.own({ localId: e.localId, text: e.text, state: e.state, seq: e.seq, ts: e.ts, error: e.error, extra: e.extra, digest: e.digest });
          if (e.hidden && e.digest) this.setHidden(e.digest, true);
        }
      }
    } finally {
      this.restoring = false;
    }
    this.system("You are back in the room. The conversation above is what this tab showed before.");
  }

  /** Keep what a reload needs: the conversation (soon), the room's state (in its serial queue). */
  persist(now = false): void {
    if (this.restoring || !this.room || this.room.closed) return;
    this.transcript?.save(now);
    window.clearTimeout(this.persistTimer);
    const room = this.room;
    const write = () => void room.snapshot().then((saved) => saved && saveRoomState(room.roomId, saved));
    if (now) write();
    else this.persistTimer = window.setTimeout(write, 300);
  }

  own(m: OwnMessage): void {
    if (!this.restoring) this.transcript?.own(m);
    let el = this.ownEls.get(m.localId);
    if (!el) {
      el = h("li", { class: "msg own" });
      this.ownEls.set(m.localId, el);
      this.log.append(el);
    }
    if (m.seq !== null) this.seen.add(m.seq);
    if (m.state === "sent" && el.dataset["state"] !== "sent") this.status.sent();
    el.dataset["state"] = m.state;
    const status =
      m.state === "sent" ? "Sent" : m.state === "pending" ? "Sending…" : `Not sent. ${m.error ?? ""}`;
    const children: Node[] = [
      h("p", { class: "who" }, h("span", { class: "name" }, `${this.room.pseudonym} (you)`), " ", h("time", { datetime: new Date(m.ts).toISOString() }, clock(m.ts))),
      ...[quoteBlock(m.extra, this.room.trustedRole(this.room.memberId))].filter((q): q is HTMLElement => q !== null),
      h("p", { class: "text" }, m.text),
      h("p", { class: "state" }, status),
    ];
    if (m.state === "failed") {
      const retry = h("button", { type: "button", class: "secondary small" }, "Try again");
      retry.addEventListener("click", () => {
        if (this.room.retry(m.localId)) return;
        // Failed before a reload: the session no longer holds it, so it goes as a new message.
        this.ownEls.get(m.localId)?.remove();
        this.ownEls.delete(m.localId);
        this.room.send(m.text, m.extra ?? {});
      });
      children.push(retry);
    }
    el.replaceChildren(...children);
    if (m.digest) this.byDigest.set(m.digest, el);
    safety.own(el, m);
    this.scroll();
    this.persist();
  }

  undecryptable(m: { seq: number; pseudonym: string; code: string }): void {
    this.system(`A message from ${m.pseudonym} could not be decrypted, so it is not shown.`, m.seq);
  }
  joined(m: { seq: number; pseudonym: string }): void {
    this.system(`${m.pseudonym} joined.`, m.seq);
    this.persist();
  }
  left(m: { seq: number; pseudonym: string; memberId: string; reason: string }): void {
    this.typers.delete(m.memberId);
    this.renderTyping();
    const text =
      m.reason === "removed"
        ? `${m.pseudonym} was removed by a host.`
        : m.reason === "disconnected" || m.reason === "expired"
          ? `${m.pseudonym} lost their connection and left.`
          : `${m.pseudonym} left.`;
    this.system(text, m.seq);
    this.persist();
  }
  renamed(m: { seq: number; pseudonym: string; old: string; memberId: string }): void {
    if (m.memberId !== this.room.memberId) this.system(`${m.old} is now ${m.pseudonym}.`, m.seq);
  }
  members(): void {
    if (!this.room) return;
    const entries = [...this.room.members.entries()];
    this.peopleCount.textContent = `(${entries.length})`;
    this.peopleList.replaceChildren(
      ...entries.map(([id, m]) =>
        h(
          "li",
          { "data-member": id },
          this.nameOf(id, m.pseudonym),
          id === this.room.memberId ? h("span", { class: "tag" }, " (you)") : null,
          // The trusted role (client.ts MemberInfo.role): a label the server alone gave shows nothing.
          m.role !== "member" && this.therapist?.id !== id ? h("span", { class: "tag" }, ` · ${m.role}`) : null,
        ),
      ),
    );
    this.youEl.textContent = this.room.pseudonym;
    this.tools?.refresh();
    this.showMute();
    if (this.composer) this.applyMode();
    this.status?.render();
    window.clearTimeout(this.safetyTimer);
    this.safetyTimer = window.setTimeout(() => {
      this.safetyEl.textContent = this.room.safetyCode();
    }, 50);
  }
  typing(memberId: string, pseudonym: string, on: boolean): void {
    if (on) this.typers.set(memberId, Date.now() + 6000);
    else this.typers.delete(memberId);
    void pseudonym;
    this.renderTyping();
  }
  expireTyping(): void {
    const now = Date.now();
    let changed = false;
    for (const [id, until] of this.typers) if (until < now) {
      this.typers.delete(id);
      changed = true;
    }
    if (changed) this.renderTyping();
  }
  renderTyping(): void {
    const names = [...this.typers.keys()].map((id) => this.room.members.get(id)?.pseudonym).filter(Boolean) as string[];
    const text = names.length === 0 ? "" : names.length === 1 ? `${names[0]} is typing…` : names.length === 2 ? `${names[0]} and ${names[1]} are typing…` : "Several people are typing…";
    if (this.typingEl.textContent !== text) this.typingEl.textContent = text;
  }
  reconnected(resumed: boolean, gap: boolean): void {
    if (!resumed) this.system("You are back. The connection was gone for a while, so you took your seat again; messages sent meanwhile could not be delivered to you.");
    else if (gap) this.system("You are back. Some messages sent while you were away could not be recovered.");
    else this.stateNote.textContent = "Reconnected.";
    window.setTimeout(() => (this.stateNote.textContent = ""), 4000);
    this.members();
  }
  ended(reason: string): void {
    clearSeat(this.room.roomId);
    this.transcript?.dispose();
    window.clearTimeout(this.persistTimer);
    // A host who ended it reads a neutral line; members read who ended it.
    const text = reason === "ended_by_host" && this.room.role !== "member"
      ? this.room.kind === "session" ? "The session has ended." : "This room has ended."
      : endedText(reason, this.room.kind);
    this.status?.ended(text);
    this.system(text);
    this.input.disabled = true;
    const back = h("a", { class: "button", href: "/", "data-nav": "/" }, "See open rooms");
    this.stateNote.replaceChildren(back);
    if (this.room.kind === "session") {
      this.tools?.dispose();
      if (this.tools) this.tools.toolbar.hidden = true;
      const card = closingCard(text);
      this.stateNote.replaceChildren(card);
      (card.querySelector("a") as HTMLElement).focus();
      return;
    }
    back.focus();
  }
  updated(): void {
    this.tools?.refresh();
    this.applyMode();
    this.status?.render();
  }
  throttled(seconds: number): void {
    this.status?.throttled(seconds);
  }
  pinned(pin: Pin | null, how: "new" | "resent" | "waiting" | "cleared" | "gone", pseudonym: string): void {
    this.pin.show(pin);
    if (how === "new") this.system(`${pin?.senderId === this.room?.memberId ? "You" : pseudonym} pinned a message.`);
    else if (how === "cleared") this.system(`${pseudonym} unpinned the pinned message.`);
    this.tools?.refresh();
  }
  seated(link: RoomLink, seat: SeatInfo): void {
    saveSeat(link, seat, this.rulesAccepted);
  }
  hidden(digest: Uint8Array, hidden: boolean): void {
    this.setHidden(hex(digest), hidden);
  }
  /** Hide (or show again) the message with this hex envelope digest. */
  setHidden(digest: string, hidden: boolean): void {
    const el = this.byDigest.get(digest);
    if (el) setHidden(el, hidden);
    if (!this.restoring) this.transcript?.hidden(digest, hidden);
  }
  /** "You are muted until 14:05", cleared when the time passes. */
  showMute(): void {
    const until = this.room.mutedUntil;
    const text = mutedText(until);
    this.muteNote.textContent = text ? `You are ${text}.` : "";
    window.clearTimeout(this.muteTimer);
    if (text && until !== null && Number.isFinite(until)) {
      this.muteTimer = window.setTimeout(() => this.showMute(), Math.max(until * 1000 - Date.now(), 0) + 500);
    }
  }
  /** Q&A mode (members ask instead of writing) and the ground rules (tick before writing). */
  applyMode(): void {
    const room = this.room;
    if (room.closed) return;
    const staff = room.role !== "member";
    const qa = Boolean(room.view["qa"]);
    const asking = qa && room.role !== "host" && room.role !== "therapist";
    this.composer.hidden = asking;
    this.askEl.hidden = !asking;
    if (this.qaOn !== null && qa !== this.qaOn) {
      const on = asking ? "Q&A mode is on: only the hosts can post. You can ask the host a question below." : "Q&A mode is on: only the hosts can post. Questions arrive in Host tools.";
      this.system(qa ? on : "Q&A mode is off: everyone can write again.");
    }
    this.qaOn = qa;
    const blob = room.view["rules"];
    const present = blob instanceof Uint8Array && blob.length > 0;
    const need = present && !this.rulesAccepted && !staff;
    if (this.rules.update(room.rules(), present, need) && this.rulesSeen) {
      this.system(present ? "The ground rules were updated. They are shown above the conversation." : "The ground rules were removed.");
    }
    this.rulesSeen = true;
    for (const el of [this.input, ...this.composer.querySelectorAll("button"), ...this.askEl.querySelectorAll("textarea, button")]) {
      (el as HTMLInputElement).disabled = need;
    }
  }
  rulesSeen = false;
  flagged(pseudonym: string): void {
    this.system(`Warning: ${pseudonym} sent inconsistent encryption keys. Their messages may not be what others see.`);
  }
}
