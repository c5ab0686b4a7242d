// Reporting a received message from the page (docs/moderation.md, "Reports with franking"): a
// "Report" button under every message from others opens a small dialog with the operator's
// reasons (`report_reasons` of /.well-known/chatserver-therapists.json) and sends `report.send`
// (RoomSession.report, with the evidence the client keeps in memory). The reporter sees plainly
// that it went to the room's hosts, or a sentence for a refusal, never a raw code.
import { ChatError, type RoomSession } from "../client.js";
import { h } from "../dom.js";
import { WELL_KNOWN } from "../console/credentials.js";

/** Plain sentences for what `report.send` (or the way there) may refuse with. */
export function describeReportError(code: string): string {
  const messages: Record<string, string> = {
    bad_report: "This message could not be checked, so it was not reported. This happens when the person who sent it has already left the room.",
    rate_limited: "You have sent several reports in a short time. Wait a moment and try again.",
    not_in_room: "You are no longer in this room, so the report could not be sent.",
    not_member: "You are no longer in this room, so the report could not be sent.",
    unknown_reason: "That reason is no longer on this server's list. Close this and open Report again.",
    wrong_room: "This message belongs to another room, so it cannot be reported here.",
    no_evidence: "This message can no longer be reported from this device.",
    connection_lost: "The connection was lost, so the report was not sent. Try again once you are back online.",
    timeout: "The server did not answer in time. The report may not have been sent; try again.",
    unavailable: "The server is busy. Try again in a moment.",
    room_not_found: "This room has ended, so the report could not be sent.",
    room_ended: "This room has ended, so the report could not be sent.",
    reasons_unavailable: "The list of reasons could not be loaded. Check your connection and try again.",
  };
  return messages[code] ?? "The report could not be sent. Please try again.";
}

let cachedReasons: Promise<string[]> | null = null;

/** The operator's report reasons (fetched once from this origin; a failure is retried next time). */
export function reportReasons(): Promise<string[]> {
  cachedReasons ??= (async () => {
    const res = await fetch(WELL_KNOWN, { credentials: "omit", cache: "no-store" });
    if (!res.ok) throw new Error("no reasons");
    const doc = (await res.json()) as { report_reasons?: unknown };
    const list = Array.isArray(doc.report_reasons) ? doc.report_reasons.filter((r): r is string => typeof r === "string" && r.length > 0) : [];
    if (!list.length) throw new Error("no reasons");
    return list;
  })().catch((e: unknown) => {
    cachedReasons = null;
    throw e;
  });
  return cachedReasons;
}

/** A reason as a label: the operator's word with a capital first letter ("self-harm risk" → "Self-harm risk"). */
export const reasonLabel = (reason: string): string => reason.charAt(0).toUpperCase() + reason.slice(1);

let dialogs = 0;

/** The "Report" action for one received message (by hex envelope digest), or null when the
 * client keeps nothing to report it with. After a report it becomes the confirmation. */
export function reportAction(room: RoomSession, digest: string, pseudonym: string, text: string): HTMLElement | null {
  if (!room.canReport(digest)) return null;
  const slot = h("div", { class: "report-action" });
  const open = h("button", { type: "button", class: "secondary small report-open", "aria-label": `Report message from ${pseudonym}`, "aria-haspopup": "dialog" }, "Report") as HTMLButtonElement;
  open.addEventListener("click", () => openDialog(room, digest, pseudonym, text, open, slot));
  slot.append(open);
  return slot;
}

function openDialog(room: RoomSession, digest: string, pseudonym: string, text: string, opener: HTMLButtonElement, slot: HTMLElement): void {
  const n = ++dialogs;
  const titleId = `report-title-${n}`;
  const err = h("p", { class: "error", role: "alert", hidden: true });
  const reasons = h("div", { class: "report-reasons" }, h("p", { class: "muted" }, "Loading the reasons…"));
  const send = h("button", { type: "submit" }, "Send report") as HTMLButtonElement;
  const cancel = h("button", { type: "button", class: "secondary" }, "Cancel") as HTMLButtonElement;
  const excerpt = text.length > 200 ? `${text.slice(0, 200)}…` : text;
  const form = h(
    "form",
    { method: "dialog", novalidate: true },
    h("h2", { id: titleId }, "Report this message"),
    h("blockquote", { class: "report-excerpt" }, h("p", { class: "meta" }, `From ${pseudonym}`), h("p", {}, excerpt)),
    h("p", { class: "hint" }, "Only the room's hosts see the report: this message's text and the reason you choose. They do not see who reported it."),
    h("fieldset", {}, h("legend", {}, "Why are you reporting it?"), reasons),
    err,
    h("div", { class: "row" }, send, cancel),
  );
  const dialog = h("dialog", { class: "report-dialog", "aria-labelledby": titleId }, form) as HTMLDialogElement;
  const close = () => {
    dialog.close();
  };
  dialog.addEventListener("close", () => {
    dialog.remove();
    if (opener.isConnected) opener.focus();
  });
  cancel.addEventListener("click", close);
  const fail = (code: string) => {
    err.textContent = describeReportError(code);
    err.hidden = false;
  };
  send.disabled = true;
  void reportReasons().then(
    (list) => {
      reasons.replaceChildren(
        ...list.map((reason, i) => {
          const id = `report-${n}-reason-${i}`;
          return h("div", { class: "choice" }, h("input", { type: "radio", name: `report-reason-${n}`, id, value: reason }), h("label", { for: id }, reasonLabel(reason)));
        }),
      );
      send.disabled = false;
      (reasons.querySelector("input") as HTMLInputElement | null)?.focus();
    },
    () => {
      reasons.replaceChildren();
      fail("reasons_unavailable");
    },
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    err.hidden = true;
    const chosen = reasons.querySelector<HTMLInputElement>("input:checked");
    if (!chosen) {
      err.textContent = "Choose a reason first.";
      err.hidden = false;
      (reasons.querySelector("input") as HTMLInputElement | null)?.focus();
      return;
    }
    send.disabled = true;
    send.textContent = "Sending…";
    try {
      const result = await room.report(digest, chosen.value);
      const done = h(
        "p",
        { class: "report-sent", tabindex: "-1" },
        result.hidden ? "Reported to the room's hosts. It is now hidden for everyone until a host reviews it." : "Reported to the room's hosts.",
      );
      slot.replaceChildren(done);
      dialog.close();
      done.focus();
    } catch (e) {
      fail(e instanceof ChatError ? e.code : "");
      send.disabled = false;
      send.textContent = "Send report";
      send.focus();
    }
  });
  // Not modal: the page's "Leave quickly" stays reachable while the sheet is open. Escape closes
  // it; it lives in #main, so leaving the room (a new view) takes it away too.
  const onKey = (ev: KeyboardEvent) => {
    if (ev.key === "Escape" && dialog.open) {
      ev.preventDefault();
      close();
    }
  };
  document.addEventListener("keydown", onKey);
  dialog.addEventListener("close", () => document.removeEventListener("keydown", onKey));
  for (const other of document.querySelectorAll<HTMLDialogElement>("dialog.report-dialog[open]")) other.close();
  (document.getElementById("main") ?? document.body).append(dialog);
  dialog.show();
  cancel.focus();
}
