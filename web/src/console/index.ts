// The therapist console's entry points in the participant's bundle: the header's "Therapist
// sign-in" link, and what rooms need (the host tools, host_tools.ts; the waiting room and the
// closing card, waiting.ts). The console itself (sign-in, session creation: console.ts) is a
// separate chunk that main.ts loads with import() only when the console is opened.
import { h } from "../dom.js";
import type { ConsoleDeps } from "./deps.js";

/** The "Therapist sign-in" entry in the site header. */
export function installEntry(tools: HTMLElement): void {
  tools.append(h("a", { class: "console-entry", href: "/?console", "data-nav": "/?console" }, "Therapist sign-in"));
}

/** Load the console chunk (once; the browser caches the module) and show it. */
export async function loadConsole(): Promise<(deps: ConsoleDeps) => void> {
  return (await import("./console.js")).showConsole;
}

export { closingCard, waitingRoom } from "./waiting.js";
export { HostTools } from "./host_tools.js";
