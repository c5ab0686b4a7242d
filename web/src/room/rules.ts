// Ground rules for participants: shown in the waiting room and in the room, with the
// "I accept these ground rules" tick that gates entering (docs/moderation.md). Text only.
import { h } from "../dom.js";

const UNREADABLE = "This session has ground rules, but they could not be read with this link.";

/** The rules' text (pre-wrapped) and an optional acceptance tick. */
export function rulesBlock(text: string | null, id: string, withAccept: boolean): { el: HTMLElement; accept: HTMLInputElement | null } {
  const accept = withAccept ? (h("input", { type: "checkbox", id: `${id}-accept`, required: true }) as HTMLInputElement) : null;
  const el = h(
    "section",
    { class: "rules", "aria-labelledby": `${id}-h` },
    h("h2", { id: `${id}-h` }, "Ground rules"),
    h("p", { class: "rules-text" }, text ?? UNREADABLE),
    accept ? h("div", { class: "choice" }, accept, h("label", { for: accept.id }, "I accept these ground rules")) : null,
  );
  return { el, accept };
}

/** The rules above the conversation: updated when a host changes them. */
export class RulesPanel {
  readonly el = h("div", { class: "rules-slot" });
  #text: string | null = null;
  #shown = false;
  #need = false;
  /** Set while the person still has to tick the rules before writing (rooms without a lobby). */
  onAccept: (() => void) | null = null;

  /** Show `text` (null with `present`: rules that cannot be read); nothing when there are none. */
  update(text: string | null, present: boolean, needAccept: boolean): boolean {
    const changed = this.#shown !== present || this.#text !== text;
    // Once ticked the box stays (checked): only new text, or a new need to accept, redraws.
    if (!changed && (this.#need === needAccept || !needAccept)) {
      this.#need = needAccept;
      return false;
    }
    this.#text = text;
    this.#shown = present;
    this.#need = needAccept;
    if (!present) {
      this.el.replaceChildren();
      return changed;
    }
    const { el, accept } = rulesBlock(text, "room-rules", needAccept);
    if (accept) {
      accept.addEventListener("change", () => {
        if (!accept.checked) return;
        accept.disabled = true;
        this.onAccept?.();
      });
    }
    this.el.replaceChildren(el);
    return changed;
  }
}
