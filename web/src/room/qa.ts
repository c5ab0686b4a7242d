// Q&A mode in the room (docs/moderation.md, "Q&A mode"): while it is on only hosts post; everyone
// else asks the hosts with a question sealed to each host's card (Room.ask in chatserver/client/room_controls.py),
// and a host answers publicly with a message quoting the question (Room.answer). Text only.
import { ChatError, type Question, type RoomSession, describeError } from "../client.js";
import { utf8 } from "../e2ee/primitives.js";
import { h } from "../dom.js";

/** The sealed question must fit MAX_QUESTION_BYTES (2048): this JSON, the asker's 64-byte
 * signature (e2ee/question.ts) and HPKE's 48 bytes. */
const MAX_QUESTION_BYTES = 1500;

/** The form members see instead of the composer while Q&A mode is on. */
export function askForm(room: RoomSession): HTMLFormElement {
  const text = h("textarea", { id: "ask-text", rows: "2", maxlength: "1500", autocomplete: "off" }) as HTMLTextAreaElement;
  const consent = h("input", { type: "checkbox", id: "ask-consent" }) as HTMLInputElement;
  const status = h("p", { class: "status-note", role: "status" });
  const send = h("button", { type: "submit" }, "Send question");
  const form = h(
    "form",
    { class: "ask", "aria-labelledby": "ask-h" },
    h("p", { class: "notice small" }, "Q&A mode is on: only the hosts can post right now. Your question goes to the hosts only, encrypted; nobody else sees it."),
    h("h3", { id: "ask-h" }, "Ask the host a question"),
    h("label", { for: "ask-text", class: "visually-hidden" }, "Your question"),
    text,
    h("div", { class: "choice" }, consent, h("label", { for: "ask-consent" }, "Show my name with my question if it is answered")),
    send,
    status,
  ) as HTMLFormElement;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const value = text.value.trim();
    if (!value) return;
    if (utf8(JSON.stringify({ text: value, consent: true })).length > MAX_QUESTION_BYTES) {
      status.textContent = "That question is too long. Please shorten it.";
      return;
    }
    send.setAttribute("disabled", "");
    try {
      const n = await room.ask(value, consent.checked);
      text.value = "";
      status.textContent = n ? "Your question was sent to the host." : "No host is here to answer right now.";
    } catch (e) {
      status.textContent = e instanceof ChatError ? describeError(e.code) : "Your question could not be sent.";
    } finally {
      send.removeAttribute("disabled");
      text.focus();
    }
  });
  return form;
}

/** One question in the host's queue, with "Answer publicly". */
export function questionItem(room: RoomSession, q: Question, done: () => void): HTMLElement {
  const id = `answer-${Math.random().toString(36).slice(2)}`;
  const answer = h("textarea", { id, rows: "2", maxlength: "4000" }) as HTMLTextAreaElement;
  const send = h("button", { type: "submit", class: "small" }, "Answer publicly");
  const form = h("form", { class: "answer" }, h("label", { for: id }, `Your answer to ${q.pseudonym}`), answer, send) as HTMLFormElement;
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const value = answer.value.trim();
    if (!value) {
      answer.focus();
      return;
    }
    room.answer(q, value);
    done();
  });
  return h(
    "li",
    { class: "question" },
    h("p", { class: "meta" }, `From ${q.pseudonym}`, q.consent ? " (may be named in the answer)" : " (will not be named)"),
    h("blockquote", { class: "text" }, q.text),
    form,
  );
}

/** The quoted question above an answer: the asker's name only when they agreed. Any member can
 * put a `quote` in a message body, so it is shown only when the message's signed sender is, now, a
 * host of the room (`senderRole`: that member's current trusted role, RoomSession.trustedRole: the
 * owner, or a co-host a host signed for, never the server's label); otherwise only the text shows. */
export function quoteBlock(extra: Record<string, unknown> | undefined, senderRole: string | undefined): HTMLElement | null {
  if (senderRole !== "host") return null;
  const quote = extra?.["quote"];
  if (!quote || typeof quote !== "object") return null;
  const text = (quote as Record<string, unknown>)["text"];
  const asker = (quote as Record<string, unknown>)["asker"];
  if (typeof text !== "string") return null;
  return h(
    "blockquote",
    { class: "quote" },
    h("p", { class: "who" }, typeof asker === "string" && asker ? `${asker} asked:` : "A question:"),
    h("p", { class: "text" }, text),
  );
}
