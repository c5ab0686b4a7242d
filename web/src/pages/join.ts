// Entering a room: the join form (the room's name, your name, ground rules, knocking at a lobby),
// taking a stored seat back after a reload, and the pages a broken link or a closed room show.
import { ChatError, type RoomSession, type Waiting, describeError, openRules, trustedRoom } from "../client.js";
import { verifiedHostName } from "../console/credentials.js";
import type { ConsoleDeps } from "../console/deps.js";
import { waitingRoom } from "../console/waiting.js";
import { openMeta, signJoin } from "../e2ee/formats.js";
import { dayClock, h } from "../dom.js";
import { alertBox, connection, main, nextId, online, setView, shell, showError } from "../page.js";
import { RoomView } from "../room/view.js";
import { rulesBlock } from "../room/rules.js";
import { errorText } from "../room/states.js";
import { Transcript } from "../room/transcript.js";
import { safety } from "../safety/index.js";
import { type StoredSeat, clearSeat, loadRoomState } from "../seats.js";
import type { RoomLink } from "../wire.js";

/** The history state of an entry that shows a room: its address lost the link's secret (kept in
 * memory only), so coming Back to it later must not read as a broken link (main.ts). */
const ROOM_ENTRY = { room: true } as const;

/** Put a room's address (without its secret) in the current history entry, marked as ours. */
export function roomAddress(path: string): void {
  history.replaceState(ROOM_ENTRY, "", path);
}

/** True when this history entry showed a room on this site (the address bar then holds no secret). */
export const wasRoomEntry = (): boolean => (history.state as { room?: unknown } | null)?.room === true;

/** What the therapist console needs of the page: it enters the room it opened like any link. */
export function consoleDeps(): ConsoleDeps {
  return {
    setView,
    connection,
    enterRoom: (link) => {
      // The room's own address, so a reload of this tab comes back to the seat (seats.ts).
      roomAddress(link.secret ? "/r" : `/r/${link.roomId}`);
      return enterRoom(link, undefined);
    },
  };
}

/** After a reload: come back to the stored seat. With the room's saved state, resume it where it
 * was (same seat, the conversation shown again, unsent messages sent); without it, or when that
 * fails, take the seat again with the same identity and card; else the join form. */
export async function restoreSeat(stored: StoredSeat): Promise<void> {
  setView("Rejoining", h("section", { class: "panel join" }, h("p", { class: "notice", role: "status" }, "Taking your seat again…")));
  const roomId = stored.link.roomId;
  const saved = loadRoomState(roomId);
  try {
    const c = await online();
    if (saved) {
      const view = safety.listen(new RoomView());
      view.rulesAccepted = stored.rulesAccepted;
      const transcript = Transcript.load(roomId, Number(saved.view["disappear_after_s"] ?? 0));
      const show = (room: RoomSession) => {
        shell.current = room;
        view.mount(room, transcript);
      };
      try {
        await c.reopen(stored.link, saved, view, show, stored.rulesAccepted);
        return;
      } catch (e) {
        if (e instanceof ChatError && e.code === "connection_lost") throw e;
        // The saved state did not fit, or the seat could not be resumed: take it again below.
      }
    }
    const view = safety.listen(new RoomView());
    view.rulesAccepted = stored.rulesAccepted;
    const room = await c.restore(stored.link, stored.seat, view, stored.rulesAccepted);
    shell.current = room;
    // The seat was taken again: the conversation this tab showed is still worth showing.
    const kept = Transcript.load(roomId, room.disappearAfterS);
    view.mount(room, kept.entries.length ? kept : undefined);
  } catch (e) {
    clearSeat(roomId);
    const code = e instanceof ChatError ? e.code : "";
    joinForm(stored.link, false, code === "lobby_required" ? "Please knock again: the host needs to let you in." : describeError(code));
  }
}

/** Join a room (the host link, or an admitted waiter's identity) and show it. */
async function enterRoom(link: RoomLink, nickname: string | undefined, admitted?: Waiting, rulesAccepted = false): Promise<void> {
  const view = safety.listen(new RoomView());
  view.rulesAccepted = rulesAccepted;
  const room = await connection().join(link, nickname, view, admitted, rulesAccepted);
  shell.current = room;
  view.mount(room);
}

export function linkError(text: string): void {
  setView(
    "Link problem",
    h("section", { class: "panel" }, h("h1", {}, "This link does not work"), h("p", {}, text), h("a", { class: "button", href: "/", "data-nav": "/" }, "See open rooms")),
  );
  main.focus();
}

/** The page for a room that is not there any more (or never was), with the way back. */
export function roomGone(): void {
  setView(
    "Room closed",
    h(
      "section",
      { class: "panel", "aria-labelledby": "gone-h" },
      h("h1", { id: "gone-h" }, "This room is not open"),
      h("p", {}, "It has ended, or this link does not lead to a room on this site. Rooms close after a while with nobody in them, and sessions close when their time is up."),
      h("a", { class: "button", href: "/", "data-nav": "/" }, "See open rooms"),
    ),
  );
  main.focus();
}

/** What the server says about a room before joining (docs/protocol.md, room.info): a private
 * room answers only a proof of its link (the join proof for the all-zero member id, over a fresh
 * challenge), so nobody without the link learns anything. */
async function roomInfo(link: RoomLink): Promise<Record<string, unknown>> {
  const c = await online();
  const payload: Record<string, unknown> = { room_id: link.roomId };
  if (link.secret) {
    const nonce = (await c.request("room.challenge", { room_id: link.roomId }))["nonce"];
    if (!(nonce instanceof Uint8Array)) throw new ChatError("bad_ack", "The server sent an unexpected answer.");
    payload["proof"] = signJoin(link.secret, nonce, new Uint8Array(16));
  }
  const room = (await c.request("room.info", payload))["room"];
  if (!room || typeof room !== "object") throw new ChatError("bad_ack", "The server sent an unexpected answer.");
  return room as Record<string, unknown>;
}

/** The room's name for the join page: a listed room's topic, a private room's title (opened with
 * the link's key; none if it has none or it does not open). */
function roomName(link: RoomLink, info: Record<string, unknown>): string | null {
  if (!link.secret) return typeof info["topic"] === "string" ? info["topic"] : null;
  if (!(info["title"] instanceof Uint8Array)) return null;
  try {
    return openMeta(link.secret.metaKey, link.secret.roomId, info["title"]) || null;
  } catch {
    return null;
  }
}

/** Fill the join page's heading and the line under it once the server has answered. */
function describeRoom(link: RoomLink, info: Record<string, unknown>, heading: HTMLElement, about: HTMLElement, created: boolean): void {
  const name = roomName(link, info);
  const session = info["kind"] === "session";
  if (name && !created) heading.textContent = link.secret ? `You have been invited to “${name}”` : `Join “${name}”`;
  const parts: (Node | string)[] = [];
  if (name && created) parts.push(h("strong", {}, name), " · ");
  parts.push(h("span", { class: `kind kind-${session ? "session" : "peer"}` }, session ? "Session with a therapist" : "Peer support"));
  if (link.secret) parts.push(" · Private room");
  if (session) {
    const start = Number(info["starts_at"] ?? 0) * 1000;
    if (start) parts.push(` · ${start > Date.now() ? "Starts" : "Started"} ${dayClock(start)}`);
    const host = h("span", { class: "verified" });
    parts.push(host);
    let hostId: string | null = null;
    try {
      hostId = trustedRoom(link.secret, info).hostId;
    } catch {
      hostId = null; // a private session without a valid charter: no name shown
    }
    // The name only once the badge verifies against this server's key, as in the directory.
    void verifiedHostName(info["badge"], link.roomId, hostId).then((n) => {
      if (n) host.textContent = ` · With ${n} (verified therapist)`;
    });
  }
  about.replaceChildren(...parts);
  about.hidden = false;
}

export function joinForm(link: RoomLink, created = false, notice = ""): void {
  const err = alertBox();
  if (notice) showError(err, notice);
  const nickId = nextId("nick");
  const nick = h("input", { id: nickId, name: "nickname", maxlength: "32", autocomplete: "off", autocapitalize: "words", spellcheck: "false", "aria-describedby": `${nickId}-hint` }) as HTMLInputElement;
  const submit = h("button", { type: "submit" }, "Join the room");
  // Filled when the server answers rules_not_accepted: the rules, and the tick that accepts them.
  const rulesSlot = h("div", {});
  const heading = h("h1", { id: "join-h" }, created ? "Your room is ready" : link.secret ? "You have been invited to a private room" : "Join the room");
  const about = h("p", { class: "meta room-about", hidden: true });
  // Name the room before joining; a room that is gone says so instead of offering a form.
  let gone = false;
  const looked = roomInfo(link).then(
    (info) => describeRoom(link, info, heading, about, created),
    (e: unknown) => {
      if (e instanceof ChatError && (e.code === "room_not_found" || e.code === "room_ended")) gone = true;
    },
  );
  void looked.then(() => {
    if (gone && heading.isConnected) roomGone();
  });
  let rulesTick: HTMLInputElement | null = null;
  const idle = () => {
    submit.removeAttribute("disabled");
    submit.textContent = rulesTick ? "Accept and join" : "Join the room";
  };
  const form = h(
    "form",
    { class: "panel join", "aria-labelledby": "join-h", novalidate: true },
    heading,
    about,
    h("div", { class: "field" }, h("label", { for: nickId }, "Your name here (optional)"), nick, h("p", { id: `${nickId}-hint`, class: "hint" }, "Leave it empty to get a friendly random name. Do not use your real name. You can change it later.")),
    h("p", { class: "notice" }, "Messages are encrypted on your device. But anyone in the room can copy or screenshot what you write, so share only what you are comfortable with."),
    rulesSlot,
    err,
    h("div", { class: "row" }, submit, h("a", { class: "button secondary", href: "/", "data-nav": "/" }, "Back")),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    err.hidden = true;
    if (rulesTick && !rulesTick.checked) {
      showError(err, "Please read the ground rules and tick “I accept these ground rules” to enter.");
      rulesTick.focus();
      return;
    }
    const accepted = Boolean(rulesTick?.checked);
    const name = nick.value.trim() || undefined;
    submit.setAttribute("disabled", "");
    submit.textContent = "Joining…";
    await looked; // one challenge at a time: the look-up's must be spent before the join asks its own
    if (gone) return;
    try {
      const c = await online();
      const view = safety.listen(new RoomView());
      view.rulesAccepted = accepted;
      const room = await c.join(link, name, view, undefined, accepted);
      shell.current = room;
      view.mount(room);
    } catch (e) {
      if (e instanceof ChatError && e.code === "lobby_required") {
        // A session with a waiting room: knock, and join with the same card once admitted.
        try {
          await waitingRoom(consoleDeps(), link, name, accepted, (w) => void enterRoom(link, name, w, accepted).catch(() => linkError("Could not enter the session.")));
          return;
        } catch (k) {
          e = k;
        }
      }
      const rules = e instanceof ChatError && e.code === "rules_not_accepted" ? e.details["rules"] : null;
      if (rules instanceof Uint8Array && !rulesTick) {
        // The room has ground rules: read them here, tick, and enter.
        const block = rulesBlock(openRules(link.secret, rules), "join-rules", true);
        rulesSlot.replaceChildren(block.el);
        rulesTick = block.accept;
        idle();
        rulesTick?.focus();
        return;
      }
      showError(err, errorText(e, "Could not join the room."));
      idle();
      nick.focus();
    }
  });
  setView(created ? "Your room" : "Join", form);
  nick.focus();
}
