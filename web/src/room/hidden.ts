// Messages hidden for everyone after reports (the `msg.hidden` push): collapsed to a note with a
// keyboard-usable "Show anyway"; a reviewer's restore brings them back.
import { h } from "../dom.js";

/** Collapse (`hidden`) or restore one message element of the chat log. */
export function setHidden(el: HTMLElement, hidden: boolean): void {
  el.querySelector(":scope > .hidden-note")?.remove();
  const content = [...el.children] as HTMLElement[];
  for (const c of content) c.hidden = hidden;
  el.classList.toggle("is-hidden", hidden);
  if (!hidden) return;
  const show = h("button", { type: "button", class: "secondary small" }, "Show anyway");
  const note = h("div", { class: "hidden-note" }, h("p", {}, "Hidden after reports, pending review"), show);
  show.addEventListener("click", () => {
    for (const c of content) c.hidden = false;
    note.replaceChildren(h("p", {}, "Hidden after reports, pending review. Shown because you asked."));
    (content[0] ?? el).focus?.();
  });
  el.prepend(note);
}
