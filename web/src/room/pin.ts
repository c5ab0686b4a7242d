// The room's pinned message or resource list (docs/protocol.md, "Pinned messages"): a panel above
// the conversation for everyone, and the staff's "Pin a message" / "Pin resources" forms. Links
// become <a> only for https addresses; everything is text, never HTML.
import type { Pin, PinLink } from "../client.js";
import { button, h } from "../dom.js";

const MAX_LINKS = 10;

/** True for an absolute https URL (what a pinned link may open). */
export function isHttps(url: string): boolean {
  try {
    return new URL(url).protocol === "https:";
  } catch {
    return false;
  }
}

function linkItem(l: PinLink): HTMLElement {
  if (isHttps(l.url)) return h("li", {}, h("a", { href: l.url, target: "_blank", rel: "noopener noreferrer" }, l.label));
  return h("li", {}, `${l.label} (${l.url})`);
}

/** The "Pinned" panel above the chat log. */
export class PinPanel {
  readonly el = h("section", { class: "pinned", "aria-labelledby": "pinned-h", hidden: true });

  show(pin: Pin | null): void {
    if (!pin) {
      this.el.hidden = true;
      this.el.replaceChildren();
      return;
    }
    this.el.hidden = false;
    const body: HTMLElement[] = pin.readable
      ? [
          h("p", { class: "pinned-text" }, pin.text),
          ...(pin.links.length ? [h("ul", { class: "pinned-links" }, ...pin.links.map(linkItem))] : []),
        ]
      : [h("p", { class: "pinned-text muted" }, "Pinned message: waiting for the host's keys…")];
    this.el.replaceChildren(h("h2", { id: "pinned-h" }, "Pinned"), ...body);
  }
}

/** "Pin a message": one text. */
export function pinMessageForm(onPin: (text: string) => Promise<void>, onCancel: () => void): HTMLElement {
  const text = h("textarea", { id: "pin-text", rows: "3", maxlength: "2000" }) as HTMLTextAreaElement;
  const err = h("p", { class: "error", role: "alert", hidden: true });
  const form = h(
    "form",
    { class: "confirm pin-form", "aria-label": "Pin a message" },
    h("label", { for: "pin-text" }, "Message to pin"),
    text,
    err,
    h("div", { class: "row" }, h("button", { type: "submit" }, "Pin it"), button("Cancel", onCancel, "secondary")),
  ) as HTMLFormElement;
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const value = text.value.trim();
    if (!value) {
      err.textContent = "Write the message to pin.";
      err.hidden = false;
      text.focus();
      return;
    }
    void onPin(value);
  });
  return form;
}

/** "Pin resources": a heading and up to ten label + https address rows. */
export function pinResourcesForm(onPin: (text: string, links: PinLink[]) => Promise<void>, onCancel: () => void): HTMLElement {
  const heading = h("input", { id: "pin-heading", maxlength: "200", value: "Resources" }) as HTMLInputElement;
  const rows = h("ol", { class: "pin-rows" });
  const err = h("p", { class: "error", role: "alert", hidden: true });
  const addRow = () => {
    const n = rows.childElementCount + 1;
    if (n > MAX_LINKS) return;
    const label = h("input", { id: `pin-label-${n}`, maxlength: "80", autocomplete: "off" });
    const url = h("input", { id: `pin-url-${n}`, type: "url", maxlength: "500", autocomplete: "off", placeholder: "https://" });
    rows.append(
      h("li", { class: "pin-row" },
        h("label", { for: `pin-label-${n}` }, `Label ${n}`), label,
        h("label", { for: `pin-url-${n}` }, `Address ${n}`), url),
    );
    add.hidden = n >= MAX_LINKS;
  };
  const add = button("Add a link", () => {
    addRow();
    (rows.lastElementChild?.querySelector("input") as HTMLInputElement | null)?.focus();
  }, "secondary small");
  const form = h(
    "form",
    { class: "confirm pin-form", "aria-label": "Pin resources" },
    h("label", { for: "pin-heading" }, "Heading"),
    heading,
    rows,
    add,
    err,
    h("div", { class: "row" }, h("button", { type: "submit" }, "Pin the list"), button("Cancel", onCancel, "secondary")),
  ) as HTMLFormElement;
  addRow();
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const links: PinLink[] = [];
    for (const row of rows.children) {
      const [label, url] = [...row.querySelectorAll("input")].map((i) => i.value.trim()) as [string, string];
      if (!label && !url) continue;
      if (!label || !isHttps(url)) {
        err.textContent = "Each link needs a label and an address starting with https://.";
        err.hidden = false;
        return;
      }
      links.push({ label, url });
    }
    if (!links.length) {
      err.textContent = "Add at least one link.";
      err.hidden = false;
      return;
    }
    void onPin(heading.value.trim() || "Resources", links);
  });
  return form;
}
