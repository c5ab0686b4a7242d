// What the therapist console needs of the app shell (main.ts provides it, pages/join.ts builds it).
// Its own module so that the console's modules and its entry points (index.ts) never import each
// other for it.
import type { Connection } from "../client.js";
import type { RoomLink } from "../wire.js";

export interface ConsoleDeps {
  setView(title: string, ...nodes: Node[]): void;
  connection(): Connection;
  enterRoom(link: RoomLink): Promise<void>;
}
