// The one DOM helper the console and room modules share: attributes with setAttribute, children
// as nodes or plain text (never HTML), so user data always reaches the page as text.
export type Child = Node | string | null | undefined | false;

/** Build an element. Attributes are set with setAttribute; children are nodes or plain text. */
export function h(tag: string, attrs: Record<string, string | boolean | undefined> = {}, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

/** A button whose click runs `onClick` (an optional accessible name for icon-like labels). */
export function button(text: string, onClick: () => unknown, cls = "", label?: string): HTMLButtonElement {
  const b = h("button", { type: "button", class: cls || undefined, "aria-label": label }, text) as HTMLButtonElement;
  b.addEventListener("click", () => void onClick());
  return b;
}

/** Local clock time, e.g. "19:00". */
export const clock = (ms: number): string => new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

/** Local weekday and time, e.g. "Thu 19:00" (a session's start). */
export const dayClock = (ms: number): string => new Date(ms).toLocaleString([], { weekday: "short", hour: "2-digit", minute: "2-digit" });

/** A labelled form field: the label names the input, the hint (if any) describes it. */
export function field(id: string, label: string, input: HTMLElement, hint?: string): HTMLElement {
  input.id = id;
  if (hint) input.setAttribute("aria-describedby", `${id}-hint`);
  return h("div", { class: "field" }, h("label", { for: id }, label), input, hint ? h("p", { id: `${id}-hint`, class: "hint" }, hint) : null);
}
