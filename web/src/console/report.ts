// A reported message as moderators see it: every field of the franked body, labelled, as text
// (never HTML). The server verified the whole body (franking), and abuse can sit in any field a
// client renders (a quote, a content warning, links) or in one it does not, so none is left out.
import { h } from "../dom.js";
import { decodeText } from "../e2ee/session.js";

const LABELS: Record<string, string> = {
  text: "Text",
  cw: "Content warning",
  quote: "Quote",
  links: "Links",
  pin_id: "Pin id",
};

/** Control, bidirectional and zero-width characters made visible (`\u202e`), so a field cannot
 * hide or reorder what a moderator reads. Newlines and tabs stay. */
export function visible(text: string): string {
  return text.replace(
    /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** A field's value as one line of text: strings as they are, anything else as compact JSON. */
export function fieldText(value: unknown): string {
  return visible(typeof value === "string" ? value : JSON.stringify(value) ?? String(value));
}

/** The fields of a type-1 body in display order (`text` first), with their labels; null when the
 * franked body (u8 type ‖ u64 client_ts ‖ body) is not a type-1 JSON object. */
export function reportFields(franked: Uint8Array): Array<{ key: string; label: string; value: string }> | null {
  if (franked.length < 9 || franked[0] !== 1) return null;
  let obj: Record<string, unknown>;
  try {
    // The clients' own strict parser: a body they would refuse (duplicate names, say, where a
    // lenient parse would keep only the last) is shown raw instead, so nothing hides.
    obj = decodeText(franked.subarray(9)).obj;
  } catch {
    return null;
  }
  const entries = Object.entries(obj);
  entries.sort(([a], [b]) => Number(b === "text") - Number(a === "text"));
  return entries.map(([key, value]) => ({ key, label: LABELS[key] ?? `Field “${visible(key)}”`, value: fieldText(value) }));
}

/** The reported body for the report queue: one labelled line per field. */
export function reportBody(franked: Uint8Array): HTMLElement {
  const fields = reportFields(franked);
  if (!fields) {
    const kind = !franked.length ? "empty" : franked[0] === 1 ? "not valid JSON text" : `type ${franked[0]}`;
    let raw = "";
    try {
      raw = visible(new TextDecoder("utf-8", { fatal: true }).decode(franked.subarray(9)));
    } catch {
      raw = "";
    }
    return h(
      "blockquote",
      { class: "text report-body" },
      h("p", { class: "report-field" }, h("strong", {}, "Not a text message"), ` (${kind}, ${Math.max(franked.length - 9, 0)} bytes)`),
      raw ? h("p", { class: "report-field", "data-field": "raw" }, h("strong", {}, "Content: "), raw) : null,
    );
  }
  return h(
    "blockquote",
    { class: "text report-body" },
    ...fields.map((f) => h("p", { class: "report-field", "data-field": f.key }, h("strong", {}, `${f.label}: `), f.value)),
  );
}
