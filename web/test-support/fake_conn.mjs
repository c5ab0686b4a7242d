// A stand-in for the browser client's Connection, shared by the node tests that drive a
// RoomSession without a socket: acks come from `handlers` (event -> data -> ack), every call is
// recorded, and `deliver` hands a push to its room as Connection's socket handler does.

/** The FakeConn class for the bundle `c` (it needs `defaultRng`, `checked` and `fromWire`). */
export function fakeConnClass(c) {
  return class FakeConn {
    constructor(handlers = {}) {
      this.connected = true;
      this.origin = "https://chat.example";
      this.rooms = new Map();
      this.waiters = new Map();
      this.calls = [];
      this.nonces = [];
      this.handlers = {
        "room.challenge": () => {
          const nonce = c.defaultRng(32);
          this.nonces.push(nonce);
          return { ok: true, nonce };
        },
        ...handlers,
      };
    }
    async call(event, data) {
      this.calls.push([event, data]);
      const handler = this.handlers[event];
      return handler ? await handler(data) : { ok: true, seq: 0 };
    }
    async request(event, data) {
      return c.checked(await this.call(event, data));
    }
    forceReconnect() {}
    get lastNonce() {
      return this.nonces.at(-1);
    }
    deliver(name, data) {
      const d = c.fromWire(data);
      if (!d || typeof d !== "object") return;
      this.rooms.get(String(d["room_id"]))?.onPush(name, d);
    }
  };
}

/** Waits until `check()` holds (polling every 10 ms); throws after `ms`. */
export async function until(check, ms = 5000) {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A short pause, for checks that something did NOT happen. */
export const settle = () => new Promise((r) => setTimeout(r, 40));
