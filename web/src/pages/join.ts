// Entering a room: the join form (name, ground rules, knocking at a lobby), taking a stored seat
// back after a reload, and the page a broken link shows.
import { ChatError, type RoomSession, type Waiting, describeError, openRules } from "../client.js";
import { type ConsoleDeps, waitingRoom } from "../console/index.js";
import { h } from "../dom.js";
import { alertBox, connection, main, nextId, online, setView, shell, showError } from "../page.js";
import { RoomView } from "../room/view.js";
import { rulesBlock } from "../room/rules.js";
import { errorText } from "../room/states.js";
import { Transcript } from "../room/transcript.js";
import { safety } from "../safety/index.js";
import { type StoredSeat, clearSeat, loadRoomState } from "../seats.js";
import type { RoomLink } from "../wire.js";

/** What the therapist console needs of the page: it enters the room it opened like any link. */
export function consoleDeps(): ConsoleDeps {
  return {
    setView,
    connection,
    enterRoom: (link) => {
      // The room's own address, so a reload of this tab comes back to the seat (seats.ts).
      history.replaceState(null, "", link.secret ? "/r" : `/r/${link.roomId}`);
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
    view.mount(room);
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

export function joinForm(link: RoomLink, created = false, notice = ""): void {
  const err = alertBox();
  if (notice) showError(err, notice);
  const nickId = nextId("nick");
  const nick = h("input", { id: nickId, name: "nickname", maxlength: "32", autocomplete: "off", autocapitalize: "words", spellcheck: "false", "aria-describedby": `${nickId}-hint` }) as HTMLInputElement;
  const submit = h("button", { type: "submit" }, "Join the room");
  // Filled when the server answers rules_not_accepted: the rules, and the tick that accepts them.
  const rulesSlot = h("div", {});
  let rulesTick: HTMLInputElement | null = null;
  const idle = () => {
    submit.removeAttribute("disabled");
    submit.textContent = rulesTick ? "Accept and join" : "Join the room";
  };
  const form = h(
    "form",
    { class: "panel join", "aria-labelledby": "join-h", novalidate: true },
    h("h1", { id: "join-h" }, created ? "Your room is ready" : link.secret ? "You have been invited to a private room" : "Join the room"),
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
