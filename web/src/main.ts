// The page's entry: routing (the address bar names what to show; one history entry per visit) and
// start-up. The views live in pages/ (directory, join) and room/ (the room itself); page.ts holds
// what they share. Every piece of user or server data reaches the DOM as text, never as HTML.
import { installEntry, loadConsole } from "./console/index.js";
import { h } from "./dom.js";
import { main, setRouter, setView, shell, showConn, connection } from "./page.js";
import { directory } from "./pages/directory.js";
import { consoleDeps, joinForm, linkError, restoreSeat, roomAddress, wasRoomEntry } from "./pages/join.js";
import { safety } from "./safety/index.js";
import { clearSeat, lastPrivateSeat, loadSeat } from "./seats.js";
import { parseLocation } from "./wire.js";

safety.install(document.getElementById("site-tools")!);
installEntry(document.getElementById("site-tools")!);

// --- routing ---------------------------------------------------------------------------------

/** Give up the current seat (navigation away), and forget it for reloads. */
function leaveCurrent(): void {
  const current = shell.current;
  if (current && !current.closed) {
    clearSeat(current.roomId);
    void current.leave();
  }
  shell.current = null;
}

function show(): void {
  if (location.pathname === "/" && location.search === "?console") {
    openConsole();
    return;
  }
  const link = parseLocation(location.pathname, location.hash);
  const arrived = Boolean(location.hash);
  if (arrived) {
    // The secret stays in memory only: strip it from the address bar and the history entry,
    // which is marked as a room's, so that coming Back to it is not taken for a broken link.
    roomAddress(location.pathname);
  }
  const stored = link && !("error" in link) ? loadSeat(link.roomId) : /^\/r\/?$/.test(location.pathname) ? lastPrivateSeat() : null;
  if (stored) {
    // A reload (or the same link again) in a tab that holds a seat in this room.
    const fresh = link && !("error" in link) && (link.secret || link.hostSeed) ? link : stored.link;
    void restoreSeat({ ...stored, link: fresh });
  } else if (link === null) {
    if (location.pathname !== "/") history.replaceState(null, "", "/");
    void directory();
  } else if ("error" in link && !arrived && wasRoomEntry()) {
    // Back (or Forward) to an entry that showed a private room this tab has left: its secret is
    // gone on purpose, so this is no broken link. Show the open rooms instead.
    history.replaceState(null, "", "/");
    void directory();
  } else if ("error" in link) {
    linkError(link.error);
  } else {
    joinForm(link);
  }
}

/** The therapist console is a separate chunk (console/console.ts), fetched only when opened. */
function openConsole(): void {
  setView("Therapist sign-in", h("section", { class: "panel join" }, h("p", { class: "notice", role: "status" }, "Opening the therapist sign-in…")));
  const stillHere = () => location.pathname === "/" && location.search === "?console";
  loadConsole().then(
    (showConsole) => {
      if (stillHere()) showConsole(consoleDeps());
    },
    () => {
      if (!stillHere()) return;
      const retry = h("button", { type: "button" }, "Try again");
      retry.addEventListener("click", openConsole);
      setView(
        "Therapist sign-in",
        h("section", { class: "panel join" }, h("h1", {}, "Therapist sign-in"), h("p", { role: "alert" }, "The sign-in page could not be loaded. Check your connection and try again."), h("div", { class: "row" }, retry, h("a", { class: "button secondary", href: "/", "data-nav": "/" }, "Back"))),
      );
    },
  );
}

function navigate(path: string): void {
  leaveCurrent();
  history.replaceState(null, "", path);
  show();
}

document.addEventListener("click", (ev) => {
  const a = (ev.target as HTMLElement).closest?.("a[data-nav]");
  if (a && !(ev as MouseEvent).ctrlKey && !(ev as MouseEvent).metaKey) {
    ev.preventDefault();
    navigate(a.getAttribute("data-nav")!);
  }
});
window.addEventListener("popstate", () => {
  leaveCurrent();
  show();
});

// --- start -----------------------------------------------------------------------------------

if (!globalThis.crypto?.subtle) {
  main.replaceChildren(
    h("section", { class: "panel" }, h("h1", {}, "This page needs a secure connection"), h("p", {}, "Encryption in your browser only works over https. Please open this site with https:// in front of its address.")),
  );
} else {
  showConn("connecting");
  connection();
  setRouter(show);
  show();
}
