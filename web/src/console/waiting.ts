// Participants of a session: the waiting room (title, the host's verified name, start time, the
// ground rules they accepted to knock) and the closing card. Text-only rendering.
import { type Waiting, openRules } from "../client.js";
import { openMeta } from "../e2ee/formats.js";
import { button, dayClock, h } from "../dom.js";
import type { RoomLink } from "../wire.js";
import { rulesBlock } from "../room/rules.js";
import { verifiedHostName } from "./credentials.js";
import type { ConsoleDeps } from "./deps.js";

// --- participants: waiting room and closing card ----------------------------------------------

export async function waitingRoom(
  deps: ConsoleDeps,
  link: RoomLink,
  nickname: string | undefined,
  acceptRules: boolean,
  onAdmitted: (w: Waiting) => void,
): Promise<void> {
  const conn = deps.connection();
  // A lobby with ground rules refuses the knock with rules_not_accepted and the rules, which the
  // join form shows with the tick; the knock is then repeated with acceptRules.
  const w = await conn.knock(link, nickname, acceptRules);
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
  const hasRules = info["rules"] instanceof Uint8Array && info["rules"].length > 0;
  const rules = hasRules ? rulesBlock(openRules(link.secret, info["rules"]), "wait-rules", false) : null;
  const state = h("p", { role: "status", class: "notice" }, "You are in the waiting room. The host will let you in soon.");
  const leave = button("Leave the waiting room", () => location.replace("/"), "secondary");
  deps.setView(
    "Waiting room",
    h(
      "section",
      { class: "panel join waiting-room", "aria-labelledby": "wait-h" },
      h("h1", { id: "wait-h" }, title),
      host,
      startsAt ? h("p", {}, `Starts at ${dayClock(startsAt * 1000)}`) : null,
      info["duration_s"] ? h("p", {}, `Planned length: ${Math.round(Number(info["duration_s"]) / 60)} minutes`) : null,
      h("p", {}, "You appear as ", h("strong", {}, w.pseudonym), "."),
      rules?.el,
      state,
      leave,
    ),
  );
  const name = await verifiedHostName(info["badge"], link.roomId, info["host_id"]);
  host.textContent = name ? `Host: ${name} (verified therapist)` : "The host's badge could not be verified.";
  let entered = false;
  w.onDecision = (ok, reason) => {
    if (ok) {
      if (entered) return;
      entered = true;
      onAdmitted(w);
    } else {
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
