// The page shell every view shares: the one connection, the element views render into, the room
// on screen, and routing hooks. Views (pages/, room/view.ts) import these; main.ts wires routing.
import { ChatError, Connection, type RoomSession } from "./client.js";
import { h } from "./dom.js";

export const main = document.getElementById("main")!;
const connEl = document.getElementById("conn")!;

/** What a room view on screen must hear from the shell: the connection's state. */
export interface ShownRoom {
  readonly room: RoomSession;
  connection(state: string): void;
}

/** The seat this tab holds, and the room view on screen (its composer follows the connection). */
export const shell = {
  current: null as RoomSession | null,
  roomView: null as ShownRoom | null,
};

let conn: Connection | null = null;
let cleanup: (() => void) | null = null;
let uid = 0;
let router: () => void = () => undefined;

export const nextId = (p: string): string => `${p}-${++uid}`;

export function connection(): Connection {
  if (!conn) {
    conn = new Connection(location.origin);
    conn.onState = showConn;
  }
  return conn;
}

export function showConn(state: string): void {
  connEl.dataset["state"] = state;
  connEl.textContent =
    state === "online" ? "" : state === "offline" ? "Connection lost. Reconnecting… Your messages will wait." : "Connecting…";
  document.body.dataset["conn"] = state;
  const view = shell.roomView;
  if (view && !view.room.closed) view.connection(state);
}

/** Replace what the page shows (running the previous view's cleanup first). */
export function setView(title: string, ...nodes: Node[]): void {
  cleanup?.();
  cleanup = null;
  main.replaceChildren(...nodes);
  document.title = `${title} · Peer support rooms`;
}

/** What to undo when the current view goes (timers, listeners). */
export function onLeaveView(fn: () => void): void {
  cleanup = fn;
}

/** Show whatever the address bar names (main.ts registers the router). */
export function route(): void {
  router();
}
export function setRouter(fn: () => void): void {
  router = fn;
}

/** Wait for the connection, at most 10 s (then `connection_lost`). */
export async function online(): Promise<Connection> {
  const c = connection();
  if (!c.connected) {
    await Promise.race([c.waitOnline(), new Promise((_, rej) => setTimeout(() => rej(new ChatError("connection_lost", "")), 10000))]);
  }
  return c;
}

export function alertBox(): HTMLElement {
  return h("p", { class: "error", role: "alert", hidden: true });
}
export function showError(el: HTMLElement, text: string): void {
  el.textContent = text;
  el.hidden = false;
}
