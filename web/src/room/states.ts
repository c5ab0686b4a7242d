// The room's state, said plainly at the composer: removed, host left, paused, slow mode (with the
// time until the next message), held back by the rate limit, locked, ended (by reason), and the
// connection coming back. One polite live line right above the message box; a ticking countdown
// sits in a part of it that is not announced every second.
import { ChatError, type RoomSession, describeError } from "../client.js";
import { button, h } from "../dom.js";

const secs = (n: number): string => `${Math.max(1, Math.ceil(n))} s`;

/** What the page says when the room closed for us, by `room.ended` reason (or why we left). */
export function endedText(reason: string, kind: string): string {
  const session = kind === "session";
  switch (reason) {
    case "removed":
      return session ? "The host removed you from this session." : "The host removed you from this room.";
    case "ended_by_host":
      return session ? "The host ended the session." : "The host ended this room.";
    case "time_up":
      return "The session reached its end time.";
    case "lifetime":
    case "expired":
      return session ? "The session reached the end of its time and has closed." : "This room reached the end of its time and has closed.";
    case "empty":
      return "This room closed after everyone had left.";
    case "left":
      return session ? "You left the session." : "You left the room.";
    case "seat_lapsed":
      return session
        ? "You were away too long and lost your seat in this session. You can join again."
        : "You were away too long and lost your seat in this room. You can join again.";
    case "room_not_found":
    case "resume_failed":
    case "rejoin_failed":
      return "The connection came back, but this room is gone: the server restarted or the room closed while you were away. Nothing you did caused this.";
    default:
      return describeError(reason);
  }
}

/** A refusal as a sentence, with the wait `retry_after` asks for. */
export function errorText(e: unknown, fallback: string): string {
  if (!(e instanceof ChatError)) return fallback;
  if (e.code === "rate_limited" && e.retryAfter) return `That was a lot at once. Try again in ${secs(e.retryAfter)}.`;
  return describeError(e.code);
}

export class RoomStatus {
  el = h("p", { class: "room-state", role: "status", "aria-live": "polite", "data-slot": "room-state", hidden: true });
  #text = h("span", {});
  #count = h("span", { "aria-live": "off" });
  #conn = "online";
  #ended: string | null = null;
  /** Slow mode: when this member may send again (ms). */
  #nextAt = 0;
  /** Held back by the rate limit until (ms). */
  #heldUntil = 0;
  #tick: number | undefined;

  constructor(readonly room: RoomSession) {
    this.el.append(this.#text, this.#count);
  }

  get #staff(): boolean {
    return this.room.role !== "member";
  }

  dispose(): void {
    window.clearInterval(this.#tick);
  }

  /** One of our messages went out: in slow mode, the next may go in N s. */
  sent(): void {
    const slow = Number(this.room.view["slow_mode_s"] ?? 0);
    if (slow > 0 && !this.#staff) this.#nextAt = Date.now() + slow * 1000;
    this.render();
  }

  throttled(seconds: number): void {
    this.#heldUntil = Date.now() + seconds * 1000;
    this.render();
  }

  connection(state: string): void {
    if (state === this.#conn) return;
    this.#conn = state;
    this.render();
  }

  ended(text: string): void {
    this.#ended = text;
    this.render();
  }

  #hostAway(): boolean {
    const room = this.room;
    if (room.kind !== "session" || room.role === "host" || room.role === "therapist") return false;
    for (const m of room.members.values()) if (m.role === "host") return false;
    return true;
  }

  /** The sentence for the state as it is now (the countdown apart). */
  #sentence(): string {
    if (this.#ended !== null) return this.#ended;
    const v = this.room.view;
    const parts: string[] = [];
    if (this.#conn !== "online") parts.push("Reconnecting to the server… This is not something you did. Your messages will wait and go out when the connection is back.");
    if (this.#hostAway()) parts.push("The host has left the session. You can keep talking here; nobody new can join until a host is back.");
    if (v["paused"]) parts.push(this.#staff ? "The chat is paused: only hosts and moderators can write." : "The host paused the chat. You can write again when it resumes.");
    const slow = Number(v["slow_mode_s"] ?? 0);
    if (slow > 0) parts.push(this.#staff ? `Slow mode is on for others: one message every ${slow} s.` : `Slow mode: one message every ${slow} s.`);
    if (v["state"] === "locked") parts.push("The room is locked: nobody new can join.");
    return parts.join(" ");
  }

  #countdown(): string {
    const now = Date.now();
    if (this.#ended !== null) return "";
    if (this.#heldUntil > now) return ` Your message is held back for a moment: it goes out in ${secs((this.#heldUntil - now) / 1000)}.`;
    const slow = Number(this.room.view["slow_mode_s"] ?? 0);
    if (slow > 0 && this.#nextAt > now && !this.#staff) return ` You can send your next message in ${secs((this.#nextAt - now) / 1000)}.`;
    return "";
  }

  render(): void {
    const text = this.#sentence();
    if (this.#text.textContent !== text) this.#text.textContent = text;
    this.#renderCount();
    const ticking = this.#count.textContent !== "";
    window.clearInterval(this.#tick);
    if (ticking) this.#tick = window.setInterval(() => this.#renderCount(), 1000);
  }

  #renderCount(): void {
    const count = this.#countdown();
    if (this.#count.textContent !== count) this.#count.textContent = count;
    this.el.hidden = !this.#text.textContent && !count;
    if (!count) window.clearInterval(this.#tick);
  }
}

/** "Leave the session?": what happens to the group, as the server does it. Cancel has the focus. */
export function confirmLeave(room: RoomSession, leave: () => void): void {
  const others = [...room.members].some(([id, m]) => id !== room.memberId && m.role === "host");
  const what = others
    ? "The group stays open: the other host carries on with it."
    : "The group stays open without you: people here can keep talking, but nobody new can join until a host is back. To close it for everyone, use End session instead.";
  const dialog = h("dialog", { class: "help-dialog leave-dialog", "aria-labelledby": "leave-q", "aria-describedby": "leave-what" }) as HTMLDialogElement;
  const cancel = button("Cancel", () => dialog.close(), "secondary");
  cancel.setAttribute("autofocus", "");
  dialog.append(
    h("h2", { id: "leave-q" }, "Leave the session?"),
    h("p", { id: "leave-what" }, what),
    h("div", { class: "row" }, cancel, button("Leave the session", () => {
      dialog.close();
      leave();
    }, "danger")),
  );
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  cancel.focus();
}
