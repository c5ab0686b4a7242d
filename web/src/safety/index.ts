// Safety for the people in the rooms, all in the browser (the server never sees the text):
// crisis signposting, content warnings, silent block, quick exit, disappearing messages, mood check-in.
// main.ts calls a handful of hooks; everything else lives here. User data reaches the DOM as text only.
import type { OwnMessage, RoomListener, RoomSession } from "../client.js";
import { detect, mentions } from "./crisis.js";
import { FALLBACK, type Line, type Resources, pickLines } from "./lines.js";
import { addMood, keepsDropping, loadMood } from "./mood.js";
import { verifiedHostName } from "../console/credentials.js";
import { type Child, h } from "../dom.js";


const local = (): Storage | null => {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
};
const session = (): Storage | null => {
  try {
    return window.sessionStorage;
  } catch {
    return null;
  }
};

export const CW_SUGGESTIONS = ["self-harm", "suicide", "abuse", "eating", "grief", "violence", "substance use"];
const COLLAPSE_KEY = "ps.collapse";
const TRIPLE_SHIFT_MS = 1000;
const RECEIVED_OFFER_EVERY_MS = 10 * 60 * 1000;

let resources: Resources = FALLBACK;
/** Help next to the message box (a draft or a received message): in view, announced, focus kept. */
let panel: HTMLElement;
let panelBody: HTMLElement;
/** Help asked for ("Get help now"): a modal dialog that takes focus; Escape closes it. */
let dialog: HTMLDialogElement;
let dialogBody: HTMLElement;
let dialogHeading: HTMLElement;
let helpButton: HTMLElement;
/** A polite live region, present from the start, so screen readers hear that help opened. */
let announcer: HTMLElement;
let inputEl: HTMLTextAreaElement | null = null;
let composerEl: HTMLFormElement | null = null;
let room: RoomSession | null = null;
let view: RoomListener | null = null;
let logEl: HTMLElement | null = null;
let cwInput: HTMLInputElement | null = null;
let cwRow: HTMLElement | null = null;
let blocked = new Set<string>();
let exiting = false;
let lastReceivedOffer = 0;
const timers = new Set<number>();

function isResources(x: unknown): x is Resources {
  return !!x && typeof x === "object" && Array.isArray((x as Resources).resources);
}

// --- quick exit ------------------------------------------------------------------------------

const EXIT_WAIT_MS = 300;

/** Forget every trace this page keeps in the browser: seats, blocks, topics, mood check-ins. */
function wipe(): void {
  for (const store of [session(), local()]) {
    try {
      store?.clear();
    } catch {
      /* storage disabled: nothing was kept */
    }
  }
}

/** Blank the page, wipe what it keeps, leave the room (best effort, briefly) and replace this
 * history entry with the neutral site, so Back leads to whatever came before this site. */
export function quickExit(): void {
  if (exiting) return;
  exiting = true;
  const url = resources.exit_url || FALLBACK.exit_url!;
  document.title = "";
  document.body.replaceChildren();
  wipe();
  for (const t of timers) window.clearTimeout(t);
  const waits: Array<Promise<unknown>> = [];
  try {
    if (room && !room.closed) waits.push(room.leave());
  } catch {
    /* leaving is best effort: the seat lapses on its own */
  }
  try {
    if ("caches" in window) waits.push(caches.keys().then((keys) => Promise.all(keys.map((k) => caches.delete(k)))));
  } catch {
    /* no Cache Storage here */
  }
  room = null;
  view = null;
  blocked = new Set();
  let gone = false;
  const go = () => {
    if (gone) return;
    gone = true;
    wipe(); // anything written while leaving
    location.replace(url);
  };
  window.setTimeout(go, EXIT_WAIT_MS);
  void Promise.allSettled(waits).then(go);
}

/** Three bare Shift presses, each within TRIPLE_SHIFT_MS of the last. Any other key (Shift+Tab,
 * a capital letter typed with Shift, Ctrl+Shift…) starts the count again. */
function shiftCounter(): void {
  let count = 0;
  let last = 0;
  window.addEventListener(
    "keydown",
    (ev) => {
      // Any other key, held or repeating, breaks the run: Shift+Tab, capitals, shortcuts.
      if (ev.key !== "Shift" || ev.ctrlKey || ev.altKey || ev.metaKey || ev.isComposing) {
        count = 0;
        return;
      }
      if (ev.repeat) return; // Shift held down is one press
      const now = performance.now();
      count = count && now - last <= TRIPLE_SHIFT_MS ? count + 1 : 1;
      last = now;
      if (count >= 3) {
        count = 0;
        quickExit();
      }
    },
    true,
  );
  window.addEventListener("blur", () => (count = 0));
}

// --- the help panel --------------------------------------------------------------------------

function lineItem(l: Line): HTMLElement {
  const bits: Child[] = [h("strong", {}, l.name)];
  if (l.phone) bits.push(" · ", h("a", { href: `tel:${l.phone.replace(/[^\d+]/g, "")}` }, `Call ${l.phone}`));
  if (l.sms) bits.push(" · ", l.sms);
  if (l.hours) bits.push(" · ", l.hours);
  if (l.url && /^https:\/\//.test(l.url)) bits.push(" · ", h("a", { href: l.url, target: "_blank", rel: "noopener noreferrer" }, "Website"));
  if (l.description) bits.push(h("span", { class: "line-desc" }, l.description));
  return h("li", { class: "help-line" }, ...bits);
}

const INTROS: Record<string, string> = {
  draft:
    "It sounds like things may be really hard right now. You do not have to face this alone. You can still send your message: people here care. If you might act on these thoughts, call your local emergency number now.",
  received:
    "Someone here may be struggling. You can reply with care: listen, ask how they are, and gently share these lines. If they may be in danger right now, contact emergency services.",
  asked: "If you are in danger right now, call your local emergency number. These lines are free and confidential.",
};

/** Sessions only: talking privately is offered with the host when the server's badge verifies
 * them as a therapist. Never in a peer room: whoever started it is a peer, not staff. */
function privateOffer(row: HTMLElement): void {
  const r = room;
  if (!r || r.closed || r.kind !== "session") return;
  const hostId = r.view["host_id"];
  if (typeof hostId !== "string" || hostId === r.memberId || r.members.get(hostId)?.role !== "host") return;
  void verifiedHostName(r.view["badge"], r.roomId, hostId).then((name) => {
    if (!name || room !== r || r.closed || !row.isConnected) return;
    const b = h("button", { type: "button", class: "secondary small" }, `Talk privately with ${name} (verified therapist)`);
    b.addEventListener("click", () => {
      const ev = new CustomEvent("safety:private-help", { detail: { roomId: r.roomId, memberId: hostId }, cancelable: true });
      if (document.dispatchEvent(ev)) {
        b.replaceWith(h("p", { class: "hint" }, `Let ${name} know in the room that you would like to talk; they can open a private room with you.`));
      }
    });
    row.append(b);
  });
}

function helpContent(reason: "draft" | "received" | "asked"): Node[] {
  const lines = pickLines(resources, navigator.languages?.length ? navigator.languages : [navigator.language], Intl.DateTimeFormat().resolvedOptions().timeZone);
  const list = h("ul", { class: "help-lines" }, ...lines.map(lineItem), resources.directory ? lineItem(resources.directory) : null);
  const privateRow = h("div", { class: "help-private" });
  privateOffer(privateRow);
  return [h("p", {}, INTROS[reason]!), list, privateRow];
}

const visible = (el: HTMLElement | null): el is HTMLElement => !!el && el.isConnected && !el.hidden && el.getClientRects().length > 0;

/** Scroll the page so that what matters is on screen below the sticky header: from `top` (the
 * panel, or a received message's care note) down to the message box if it fits, else the panel. */
function bringIntoView(top: HTMLElement): void {
  const box = logEl?.closest<HTMLElement>(".log");
  if (box) box.scrollTop = box.scrollHeight;
  const head = document.querySelector("header.site")?.getBoundingClientRect().bottom ?? 0;
  const room = window.innerHeight - head - 8;
  for (const bottom of [composerEl, panel]) {
    if (!visible(bottom)) continue;
    if (bottom.getBoundingClientRect().bottom - top.getBoundingClientRect().top > room) continue;
    window.scrollBy(0, bottom.getBoundingClientRect().bottom - window.innerHeight + 4);
    const t = top.getBoundingClientRect().top;
    if (t < head) window.scrollBy(0, t - head - 4);
    return;
  }
  window.scrollBy(0, panel.getBoundingClientRect().top - head - 4);
}

function announce(text: string): void {
  announcer.textContent = "";
  const t = window.setTimeout(() => {
    announcer.textContent = text;
    timers.delete(t);
  }, 60);
  timers.add(t);
}

export function showHelp(reason: "draft" | "received" | "asked"): void {
  if (exiting) return;
  if (reason !== "asked" && panel.isConnected) {
    // Next to the message box, in view; focus stays where the person is typing.
    panelBody.replaceChildren(...helpContent(reason));
    panel.dataset["reason"] = reason;
    panel.hidden = false;
    panel.closest(".chat")?.classList.add("help-open");
    bringIntoView(panel);
    if (reason === "received") {
      // The message arrives in the log right after this: show its care note with the panel.
      const t = window.setTimeout(() => {
        timers.delete(t);
        const notes = logEl?.querySelectorAll<HTMLElement>(".care-note");
        const note = notes?.[notes.length - 1];
        if (!panel.hidden) bringIntoView(note ?? panel);
      }, 0);
      timers.add(t);
    }
    announce(
      reason === "draft"
        ? "Support is here: free help lines are shown just above the message box."
        : "Someone may be struggling: support lines are shown just above the message box.",
    );
    return;
  }
  dialogBody.replaceChildren(...helpContent(reason));
  dialog.dataset["reason"] = reason;
  if (!dialog.open) dialog.showModal();
  dialogHeading.focus();
}

function hideHelp(): void {
  panel.hidden = true;
  panel.closest(".chat")?.classList.remove("help-open");
  if (visible(inputEl) && !inputEl.disabled) inputEl.focus();
}

/** Where focus goes back to when the dialog closes: the message box in a room, else the button. */
function returnFocus(): void {
  if (exiting) return;
  if (visible(inputEl) && !inputEl.disabled) inputEl.focus();
  else if (helpButton.isConnected) helpButton.focus();
}

// --- install (once per page) -----------------------------------------------------------------

function install(tools: HTMLElement): void {
  helpButton = h("button", { type: "button", class: "secondary small get-help", "aria-haspopup": "dialog", "aria-controls": "help-dialog" }, "Get help now");
  helpButton.addEventListener("click", () => showHelp("asked"));
  const exit = h("button", { type: "button", class: "quick-exit small", title: "Or press Shift three times" }, "Leave quickly");
  exit.addEventListener("click", quickExit);
  // The page's static links (usable before this script ran, or without it) give way to the
  // buttons, which also wipe traces on exit; focus follows if a static link held it.
  const early = document.getElementById("early-tools");
  const hadFocus = early?.contains(document.activeElement) ?? false;
  early?.remove();
  tools.append(helpButton, exit);
  if (hadFocus) exit.focus();

  const close = h("button", { type: "button", class: "secondary small" }, "Close");
  close.addEventListener("click", hideHelp);
  panelBody = h("div", {});
  panel = h(
    "section",
    { id: "help-panel", class: "help-panel", role: "region", "aria-labelledby": "help-h", tabindex: "-1", hidden: true },
    h("div", { class: "help-head" }, h("h2", { id: "help-h" }, "Support is here"), close),
    panelBody,
  );
  panel.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") {
      ev.preventDefault();
      hideHelp();
    }
  });

  const closeDialog = h("button", { type: "button", class: "secondary small" }, "Close");
  dialogBody = h("div", {});
  dialogHeading = h("h2", { id: "help-dialog-h", tabindex: "-1" }, "Support is here");
  dialog = h(
    "dialog",
    { id: "help-dialog", class: "help-dialog", "aria-labelledby": "help-dialog-h" },
    h("div", { class: "help-head" }, dialogHeading, closeDialog),
    dialogBody,
  ) as HTMLDialogElement;
  const shut = () => {
    if (dialog.open) dialog.close();
    returnFocus();
  };
  closeDialog.addEventListener("click", shut);
  dialog.addEventListener("close", returnFocus);
  // Escape closes; Tab stays inside (a modal dialog alone lets it leave for the browser's toolbar).
  dialog.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") {
      ev.preventDefault();
      shut();
      return;
    }
    if (ev.key !== "Tab") return;
    const stops = [...dialog.querySelectorAll<HTMLElement>("a[href], button:not([disabled])")].filter((el) => el.getClientRects().length > 0);
    const first = stops[0];
    const last = stops[stops.length - 1];
    if (!first || !last) return;
    const at = document.activeElement;
    if (ev.shiftKey && (at === first || at === dialogHeading || at === dialog)) {
      ev.preventDefault();
      last.focus();
    } else if (!ev.shiftKey && at === last) {
      ev.preventDefault();
      first.focus();
    }
  });
  announcer = h("p", { id: "help-announce", class: "visually-hidden", role: "status", "aria-live": "polite" });
  document.body.append(dialog, announcer);

  // The header (help and quick exit) stays on screen; scrolling into view keeps clear of it.
  const head = tools.closest("header");
  if (head && "ResizeObserver" in window) {
    new ResizeObserver(() => document.documentElement.style.setProperty("--site-head", `${head.offsetHeight}px`)).observe(head);
  }

  shiftCounter();
  window.addEventListener("pageshow", (ev) => {
    if (ev.persisted && exiting) location.replace(resources.exit_url || FALLBACK.exit_url!);
  });
  fetch("/resources.json", { credentials: "omit", cache: "no-store" })
    .then((r) => (r.ok ? r.json() : null))
    .then((data: unknown) => {
      if (isResources(data)) resources = data;
    })
    .catch(() => undefined);
}

// --- the room --------------------------------------------------------------------------------

/** Wrap the room's listener: a blocked member's messages, typing and renames never reach the page. */
function listen<T extends RoomListener>(target: T): T {
  const proxy = new Proxy(target, {
    get(t, prop, recv) {
      const v = Reflect.get(t, prop, recv);
      if (typeof v !== "function") return v;
      if (prop === "message") return (m: { senderId: string }) => (blocked.has(m.senderId) ? undefined : v.call(recv, m));
      if (prop === "typing") return (id: string, name: string, on: boolean) => (blocked.has(id) ? undefined : v.call(recv, id, name, on));
      if (prop === "renamed" || prop === "joined") return (m: { memberId: string }) => (blocked.has(m.memberId) ? undefined : v.call(recv, m));
      return v;
    },
  });
  view = proxy;
  return proxy;
}

const blockKey = (roomId: string) => `ps.block.${roomId}`;

function setBlocked(id: string, on: boolean): void {
  if (!room) return;
  if (on) blocked.add(id);
  else blocked.delete(id);
  try {
    session()?.setItem(blockKey(room.roomId), JSON.stringify([...blocked]));
  } catch {
    /* kept in memory only */
  }
  if (on) {
    for (const el of logEl?.querySelectorAll<HTMLElement>("[data-from]") ?? []) if (el.dataset["from"] === id) el.remove();
    view?.typing(id, "", false);
  }
}

function blockButtons(people: HTMLElement): void {
  for (const li of people.querySelectorAll<HTMLElement>("li[data-member]")) {
    const id = li.dataset["member"]!;
    if (!room || id === room.memberId || li.querySelector(".block")) continue;
    // A session's staff (the therapist and the moderators they named, by trusted role) cannot be
    // silenced from view; a message of theirs that is out of line can be reported instead.
    if (room.kind === "session" && (room.members.get(id)?.role ?? "member") !== "member") continue;
    const name = room.members.get(id)?.pseudonym ?? "this person";
    const b = h("button", { type: "button", class: "secondary small block" });
    const render = () => {
      const on = blocked.has(id);
      b.textContent = on ? "Unblock" : "Block";
      b.setAttribute("aria-label", on ? `Unblock ${name}` : `Block ${name}`);
      b.setAttribute("aria-pressed", String(on));
    };
    b.addEventListener("click", () => {
      setBlocked(id, !blocked.has(id));
      render();
    });
    render();
    li.append(" ", b);
  }
}

function collapseTopics(): { categories: string[]; words: string[] } {
  try {
    const v = JSON.parse(local()?.getItem(COLLAPSE_KEY) ?? "{}");
    return { categories: Array.isArray(v.categories) ? v.categories.map(String) : [], words: Array.isArray(v.words) ? v.words.map(String) : [] };
  } catch {
    return { categories: [], words: [] };
  }
}

function topicsSection(): HTMLElement {
  const pref = collapseTopics();
  const save = () => {
    try {
      local()?.setItem(COLLAPSE_KEY, JSON.stringify(pref));
    } catch {
      /* not kept */
    }
  };
  const boxes = (
    [
      ["suicide", "Suicide"],
      ["self_harm", "Self-harm"],
      ["despair", "Hopelessness"],
    ] as const
  ).map(([value, label]) => {
    const id = `collapse-${value}`;
    const box = h("input", { type: "checkbox", id, checked: pref.categories.includes(value) }) as HTMLInputElement;
    box.addEventListener("change", () => {
      pref.categories = box.checked ? [...new Set([...pref.categories, value])] : pref.categories.filter((c) => c !== value);
      save();
    });
    return h("div", { class: "choice" }, box, h("label", { for: id }, label));
  });
  const words = h("input", { id: "collapse-words", maxlength: "200", autocomplete: "off", value: pref.words.join(", ") }) as HTMLInputElement;
  words.addEventListener("change", () => {
    pref.words = words.value.split(",").map((w) => w.trim()).filter(Boolean).slice(0, 20);
    save();
  });
  return h(
    "section",
    { "aria-labelledby": "collapse-h", class: "collapse-prefs" },
    h("h2", { id: "collapse-h" }, "Topics to always collapse"),
    h("p", { class: "hint" }, "Messages about these arrive folded; open them when you are ready. Kept only in this browser."),
    ...boxes,
    h("div", { class: "field" }, h("label", { for: "collapse-words" }, "Other words (comma-separated)"), words),
  );
}

function moodCard(phase: "in" | "out"): HTMLElement {
  const faces: Array<[number, string, string]> = [
    [1, "😞", "Very low"],
    [2, "🙁", "Low"],
    [3, "😐", "Okay"],
    [4, "🙂", "Good"],
    [5, "😊", "Very good"],
  ];
  const card = h("div", { class: "mood notice small", role: "group", "aria-labelledby": `mood-${phase}-h` });
  const done = (text: string) => {
    card.replaceChildren(h("p", {}, text));
    const t = window.setTimeout(() => card.remove(), 8000);
    timers.add(t);
  };
  const buttons = faces.map(([v, face, label]) => {
    const b = h("button", { type: "button", class: "secondary small mood-face", "aria-label": label, title: label }, face);
    b.addEventListener("click", () => {
      const all = addMood(local(), { t: Date.now(), phase, v });
      done(
        keepsDropping(all)
          ? "Thank you. Your check-ins have been going down lately. It might help to take a break, or to talk with a professional: “Get help now” at the top lists free lines."
          : phase === "in"
            ? "Thank you. Be gentle with yourself."
            : "Thank you for checking in. Take care.",
      );
    });
    return b;
  });
  const skip = h("button", { type: "button", class: "secondary small" }, "Not now");
  skip.addEventListener("click", () => card.remove());
  card.append(
    h("p", { id: `mood-${phase}-h` }, phase === "in" ? "How are you feeling right now? (Only kept in this browser; “Leave quickly” clears it.)" : "Before you go: how are you feeling now?"),
    h("div", { class: "row" }, ...buttons, skip),
  );
  return card;
}

function mount(r: RoomSession, parts: { input: HTMLTextAreaElement; composer: HTMLFormElement; people: HTMLElement; log: HTMLElement }): void {
  room = r;
  logEl = parts.log;
  inputEl = parts.input;
  composerEl = parts.composer;
  panel.hidden = true;
  try {
    blocked = new Set(JSON.parse(session()?.getItem(blockKey(r.roomId)) ?? "[]") as string[]);
  } catch {
    blocked = new Set();
  }
  // Crisis signposting while writing: offered once per draft, never blocking the send.
  let offered = false;
  let debounce: number | undefined;
  parts.input.addEventListener("input", () => {
    window.clearTimeout(debounce);
    if (!parts.input.value.trim()) offered = false;
    debounce = window.setTimeout(() => {
      if (!offered && detect(parts.input.value)) {
        offered = true;
        showHelp("draft");
      }
    }, 400);
  });
  // Content warning for the next message.
  cwInput = h("input", { id: "cw-input", maxlength: "60", autocomplete: "off", list: "cw-topics", placeholder: "for example: self-harm" }) as HTMLInputElement;
  const cwToggle = h("button", { type: "button", class: "secondary small", "aria-expanded": "false", "aria-controls": "cw-row" }, "Add a content warning");
  cwRow = h(
    "div",
    { id: "cw-row", class: "cw-row row", hidden: true },
    h("label", { for: "cw-input" }, "Content warning for your next message"),
    cwInput,
    h("datalist", { id: "cw-topics" }, ...CW_SUGGESTIONS.map((s) => h("option", { value: s }))),
  );
  cwToggle.addEventListener("click", () => {
    const open = cwRow!.hidden;
    cwRow!.hidden = !open;
    cwToggle.setAttribute("aria-expanded", String(open));
    if (open) cwInput!.focus();
    else cwInput!.value = "";
  });
  parts.composer.before(panel, h("div", { class: "composer-tools" }, cwToggle), cwRow);
  // Block buttons in "Who is here", kept as the list is redrawn.
  blockButtons(parts.people);
  new MutationObserver(() => blockButtons(parts.people)).observe(parts.people, { childList: true });
  parts.people.closest("aside")?.append(topicsSection());
  // Mood check-in on joining.
  if (!r.closed) parts.log.closest(".chat")?.prepend(moodCard("in"));
  void loadMood;
}

/** Fields to put inside the next message's encrypted body (the content warning), then reset. */
function extra(): Record<string, unknown> {
  const cw = cwInput && cwRow && !cwRow.hidden ? cwInput.value.trim().slice(0, 60) : "";
  if (cwInput) cwInput.value = "";
  return cw ? { cw } : {};
}

function collapse(el: HTMLElement, label: string): void {
  const text = el.querySelector(".text");
  if (!text) return;
  const details = h("details", { class: "cw" }, h("summary", {}, label, h("span", { class: "cw-open" }, " · Show")));
  text.replaceWith(details);
  details.append(text);
  details.addEventListener("toggle", () => {
    const open = details.querySelector(".cw-open");
    if (open) open.textContent = (details as HTMLDetailsElement).open ? " · Hide" : " · Show";
  });
}

/** A received message on the page: content warnings, folding, a care note, help offered (not for
 * what a reload brings back, `quiet`: the person saw that offer already), disappearing. */
function message(el: HTMLElement, m: { seq: number; ts: number; senderId: string; text: string; extra: Record<string, unknown> }, quiet = false): void {
  el.dataset["from"] = m.senderId;
  const cw = typeof m.extra["cw"] === "string" ? m.extra["cw"].trim().slice(0, 60) : "";
  const category = detect(m.text);
  const pref = collapseTopics();
  const word = mentions(m.text, pref.words);
  if (cw) collapse(el, `Content warning: ${cw}`);
  else if (category && pref.categories.includes(category)) collapse(el, "Folded: a topic you chose to collapse");
  else if (word) collapse(el, `Folded: mentions “${word}”`);
  if (category) {
    const b = h("button", { type: "button", class: "link small" }, "Support and crisis lines");
    b.addEventListener("click", () => showHelp("received"));
    el.append(h("p", { class: "care-note" }, "If someone here may be struggling: ", b));
    const now = Date.now();
    if (!quiet && now - lastReceivedOffer > RECEIVED_OFFER_EVERY_MS && panel.hidden && !dialog.open) {
      lastReceivedOffer = now;
      showHelp("received");
    }
  }
  disappear(el, m.ts);
}

function own(el: HTMLElement, m: OwnMessage): void {
  const cw = typeof m.extra?.["cw"] === "string" ? String(m.extra["cw"]) : "";
  if (cw) el.querySelector(".text")?.before(h("p", { class: "cw-label" }, `Content warning: ${cw}`));
  if (m.state === "sent" && !el.dataset["disappears"]) disappear(el, m.ts);
}

/** Disappearing messages: a room setting (minutes, set at creation); the element leaves the page. */
function disappear(el: HTMLElement, ts: number): void {
  const minutes = disappearMinutes();
  if (!minutes) return;
  el.dataset["disappears"] = "1";
  const t = window.setTimeout(() => {
    el.remove();
    timers.delete(t);
  }, Math.max(0, ts + minutes * 60_000 - Date.now()));
  timers.add(t);
}

function disappearMinutes(): number {
  const s = Number(room?.disappearAfterS ?? 0);
  return s > 0 ? s / 60 : 0;
}

/** After an ordinary leave: offer the check-out. */
function left(main: HTMLElement): void {
  room = null;
  blocked = new Set();
  main.prepend(moodCard("out"));
}

export const safety = { install, listen, mount, extra, message, own, left, quickExit, showHelp };
