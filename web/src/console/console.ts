// The therapist console proper (docs/moderation.md, "Web console"): sign-in with the credential
// (kept in this tab's sessionStorage only, checked locally against the published key) and session
// creation. Loaded on demand (main.ts, a dynamic import()) only when the console is opened, so a
// participant's first load never downloads it. Every piece of data reaches the DOM as text.
import { ChatError, describeError, rulesTooLong } from "../client.js";
import { type RoomLink } from "../wire.js";
import { CredentialError, serverKey, splitToken, verifyCert } from "./credentials.js";
import { button, field, h } from "../dom.js";
import type { ConsoleDeps } from "./deps.js";

const errText = (e: unknown, fallback: string): string =>
  e instanceof CredentialError ? e.message : e instanceof ChatError ? (e.code.startsWith("credential_") ? credentialMessage(e.code) : describeError(e.code) === describeError("?") ? fallback : describeError(e.code)) : fallback;
function credentialMessage(code: string): string {
  return (
    {
      credential_malformed: "This credential is damaged. Copy it again, in full.",
      credential_tampered: "This credential was not issued by this server, or it was changed.",
      credential_expired: "This credential has expired. Ask the operator for a new one.",
      credential_revoked: "This credential has been revoked. Ask the operator.",
    }[code] ?? "This credential was refused."
  );
}
const STORE = "chatserver.therapist-credential";

// --- sign-in and session creation ------------------------------------------------------------

export function showConsole(deps: ConsoleDeps): void {
  const token = sessionStorage.getItem(STORE);
  if (token) void signedIn(deps, token);
  else signInForm(deps);
}

function signInForm(deps: ConsoleDeps, message = ""): void {
  const err = h("p", { class: "error", role: "alert", hidden: !message }, message);
  const input = h("textarea", { id: "cred", rows: "3", autocomplete: "off", spellcheck: "false", "aria-describedby": "cred-hint" }) as HTMLTextAreaElement;
  const submit = h("button", { type: "submit" }, "Sign in");
  const form = h(
    "form",
    { class: "panel join", "aria-labelledby": "console-h", novalidate: true },
    h("h1", { id: "console-h" }, "Therapist sign-in"),
    h("div", { class: "field" }, h("label", { for: "cred" }, "Your credential"), input,
      h("p", { id: "cred-hint", class: "hint" }, "Paste the credential the operator gave you (it starts with cst1.). It stays in this browser tab only and is forgotten when you close it.")),
    err,
    h("div", { class: "row" }, submit, h("a", { class: "button secondary", href: "/", "data-nav": "/" }, "Back")),
  ) as HTMLFormElement;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    err.hidden = true;
    const value = input.value.trim();
    if (!value) return;
    submit.setAttribute("disabled", "");
    try {
      const { key } = await serverKey();
      verifyCert(key, splitToken(value).cert); // locally, before the server sees anything
      sessionStorage.setItem(STORE, value);
      await signedIn(deps, value);
    } catch (e) {
      err.textContent = errText(e, "Could not sign in.");
      err.hidden = false;
      submit.removeAttribute("disabled");
    }
  });
  deps.setView("Therapist sign-in", form);
  input.focus();
}

async function signedIn(deps: ConsoleDeps, token: string): Promise<void> {
  const conn = deps.connection();
  let name: string;
  try {
    if (!conn.connected) await conn.waitOnline();
    name = (await conn.signIn(token)).name;
  } catch (e) {
    if (e instanceof ChatError && e.code.startsWith("credential_")) sessionStorage.removeItem(STORE);
    signInForm(deps, errText(e, "Could not sign in."));
    return;
  }
  sessionForm(deps, name);
}

function sessionForm(deps: ConsoleDeps, name: string): void {
  const err = h("p", { class: "error", role: "alert", hidden: true });
  const title = h("input", { maxlength: "100", autocomplete: "off", required: true }) as HTMLInputElement;
  const start = h("input", { type: "datetime-local" }) as HTMLInputElement;
  const duration = h("input", { type: "number", min: "0", max: "600", step: "5", inputmode: "numeric" }) as HTMLInputElement;
  const capacity = h("input", { type: "number", min: "2", max: "100", value: "10", inputmode: "numeric" }) as HTMLInputElement;
  const lobby = h("input", { type: "checkbox", id: "s-lobby", checked: true }) as HTMLInputElement;
  const rules = h("textarea", { rows: "4", maxlength: "2048" }) as HTMLTextAreaElement;
  const listed = h("input", { type: "checkbox", id: "s-listed" }) as HTMLInputElement;
  const topic = h("input", { maxlength: "64", autocomplete: "off" }) as HTMLInputElement;
  const titleRow = field("s-title", "Title", title, "Encrypted: only people with the link can read it.");
  const topicRow = field("s-topic", "Topic in the directory", topic, "Public: anyone can find the session by it, for example: grief, sleep.");
  const showListed = () => {
    titleRow.hidden = listed.checked;
    topicRow.hidden = !listed.checked;
  };
  listed.addEventListener("change", showListed);
  const submit = h("button", { type: "submit" }, "Create session");
  const signOut = button("Sign out", () => {
    sessionStorage.removeItem(STORE);
    location.replace("/");
  }, "secondary");
  const form = h(
    "form",
    { class: "panel join", "aria-labelledby": "session-h", novalidate: true },
    h("h1", { id: "session-h" }, "New session"),
    h("p", { class: "verified" }, "Signed in as ", h("strong", {}, name), " (verified)"),
    h("div", { class: "choice" }, listed, h("label", { for: "s-listed" }, "List in the directory")),
    titleRow,
    topicRow,
    field("s-start", "Start time (optional)", start, "People can wait in the lobby before; you admit them from then."),
    field("s-duration", "Duration in minutes (optional)", duration, "Shows a timer with a five-minute warning."),
    field("s-capacity", "Capacity", capacity),
    h("div", { class: "choice" }, lobby, h("label", { for: "s-lobby" }, "Waiting room: I admit each person")),
    field("s-rules", "Ground rules (optional)", rules, "Shown before people enter; each person accepts them. Encrypted for private sessions."),
    err,
    h("div", { class: "row" }, submit, signOut),
  ) as HTMLFormElement;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    err.hidden = true;
    const fail = (text: string, el: HTMLElement) => {
      err.textContent = text;
      err.hidden = false;
      el.focus();
    };
    if (listed.checked && !topic.value.trim()) return fail("Please give the session a topic for the directory.", topic);
    if (!listed.checked && !title.value.trim()) return fail("Please give the session a title.", title);
    if (rulesTooLong(!listed.checked, rules.value.trim())) return fail("These ground rules are too long. Please shorten them.", rules);
    submit.setAttribute("disabled", "");
    try {
      const conn = deps.connection();
      const startsAt = start.value ? new Date(start.value).getTime() / 1000 : undefined;
      const created = await conn.createSession({
        title: listed.checked ? undefined : title.value.trim(),
        listed: listed.checked,
        topic: listed.checked ? topic.value.trim() : undefined,
        rules: rules.value.trim() || undefined,
        capacity: Number(capacity.value) || undefined,
        startsAt: startsAt && startsAt > Date.now() / 1000 ? startsAt : undefined,
        durationS: Number(duration.value) ? Number(duration.value) * 60 : undefined,
        lobby: lobby.checked,
      });
      ready(deps, created.url, created.hostLink);
    } catch (e) {
      if (e instanceof ChatError && e.code === "not_signed_in") {
        await signedIn(deps, sessionStorage.getItem(STORE) ?? "");
        return;
      }
      err.textContent = errText(e, "Could not create the session.");
      err.hidden = false;
      submit.removeAttribute("disabled");
    }
  });
  showListed();
  deps.setView("New session", form);
  title.focus();
}

function ready(deps: ConsoleDeps, url: string, hostLink: RoomLink): void {
  const copied = h("span", { class: "copied", role: "status" });
  const open = button("Open the session as host", async () => {
    open.setAttribute("disabled", "");
    await deps.enterRoom(hostLink);
  });
  deps.setView(
    "Session ready",
    h(
      "section",
      { class: "panel join", "aria-labelledby": "ready-h" },
      h("h1", { id: "ready-h" }, "Your session is ready"),
      field("share-link", "Link for participants", h("input", { readonly: true, value: url })),
      h("div", { class: "row" }, button("Copy link", async () => {
        try {
          await navigator.clipboard.writeText(url);
          copied.textContent = "Link copied.";
        } catch {
          copied.textContent = "Select the link and copy it.";
        }
      }, "secondary"), copied),
      h("p", { class: "notice" }, "The host seat stays in this tab only. Keep it open until the session ends."),
      open,
    ),
  );
}
