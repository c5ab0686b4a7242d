// Reference peer: Node's socket.io 4.8 doing the same room fan-out as chatserver, with plain payloads.
// Same wire (Engine.IO 4 over websocket only, msgpack parser, no permessage-deflate), same event names
// and ack shapes as chatserver's protocol, so bench/run.py drives both with one load generator.
//   PORT=8080 node server.js
//   PORT=8080 REDIS_URL=redis://127.0.0.1:6379/0 node server.js   # one of several nodes on Redis
// With REDIS_URL, rooms span nodes through @socket.io/redis-adapter's sharded adapter (SPUBLISH /
// SSUBSCRIBE, "dynamic" subscriptions: one channel per room, subscribed by the nodes that hold a
// member of it). Any node accepts a join to any room id (rooms are names, as in chatserver, whose
// rooms live in Redis); sequence numbers and member lists stay per node.
"use strict";
const http = require("http");
const crypto = require("crypto");
const { Server } = require("socket.io");
const parser = require("socket.io-msgpack-parser");
const redisUrl = process.env.REDIS_URL;

const port = Number(process.env.PORT || 8080);
const httpServer = http.createServer((req, res) => {
  if (req.url === "/healthz") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end('{"ok":true}');
    return;
  }
  res.writeHead(404);
  res.end();
});
const io = new Server(httpServer, {
  parser,
  transports: ["websocket"],
  allowUpgrades: false,
  perMessageDeflate: false,
  httpCompression: false,
  maxHttpBufferSize: 80 * 1024,
  pingInterval: 20000,
  pingTimeout: 20000,
  serveClient: false,
});

const seqs = new Map(); // room id -> last sequence number (this node's)
const rooms = new Map(); // room id -> Map(member id -> member view) (this node's members)
const ok = (extra) => Object.assign({ ok: true }, extra);
const ROOM_ID = /^[A-Za-z0-9_-]{22}$/; // 16 bytes, base64url, as room.create makes them

io.on("connection", (socket) => {
  const memberOf = new Map(); // room id -> member id
  socket.on("room.create", (p, ack) => {
    const roomId = crypto.randomBytes(16).toString("base64url");
    seqs.set(roomId, 0);
    rooms.set(roomId, new Map());
    ack(ok({ room: { room_id: roomId, epoch: 0 } }));
  });
  socket.on("room.join", (p, ack) => {
    const roomId = p && p.room_id;
    if (!seqs.has(roomId)) {
      // Alone, a node knows the rooms it created; on Redis, a room created on another node
      // is joinable here too (this node's first member of it starts its local state).
      if (!redisUrl || typeof roomId !== "string" || !ROOM_ID.test(roomId)) {
        return ack({ ok: false, error: { code: "room_not_found" } });
      }
      seqs.set(roomId, 0);
      rooms.set(roomId, new Map());
    }
    const memberId = crypto.randomBytes(16).toString("base64url");
    // The member view chatserver keeps and sends (its card is 169 bytes): a newcomer gets the
    // room's member list in its ack and everyone gets the newcomer's view, as in chatserver.
    const view = {
      member_id: memberId,
      pseudonym: "member-" + memberId.slice(0, 6),
      role: "member",
      card: Buffer.isBuffer(p.card) ? p.card : crypto.randomBytes(169),
      joined_at: Date.now(),
    };
    memberOf.set(roomId, memberId);
    rooms.get(roomId).set(memberId, view);
    socket.join(roomId);
    const seq = seqs.get(roomId) + 1;
    seqs.set(roomId, seq);
    io.to(roomId).emit("member.joined", { room_id: roomId, seq, member: view, epoch: 0 });
    const members = Array.from(rooms.get(roomId).values());
    ack(ok({ room: { room_id: roomId, epoch: 0 }, you: view, members, member_id: memberId, seq }));
  });
  socket.on("room.leave", (p, ack) => {
    const roomId = p && p.room_id;
    const memberId = memberOf.get(roomId);
    if (memberId === undefined) return ack({ ok: false, error: { code: "not_in_room" } });
    memberOf.delete(roomId);
    rooms.get(roomId).delete(memberId);
    socket.leave(roomId);
    const seq = seqs.get(roomId) + 1;
    seqs.set(roomId, seq);
    io.to(roomId).emit("member.left", { room_id: roomId, seq, member_id: memberId, epoch: 0 });
    ack(ok({ seq }));
  });
  socket.on("disconnect", () => {
    for (const [roomId, memberId] of memberOf) rooms.get(roomId).delete(memberId);
  });
  socket.on("msg.send", (p, ack) => {
    const roomId = p && p.room_id;
    const memberId = memberOf.get(roomId);
    if (memberId === undefined) return ack({ ok: false, error: { code: "not_in_room" } });
    const seq = seqs.get(roomId) + 1;
    seqs.set(roomId, seq);
    const ts = Date.now();
    const stamp = crypto.randomBytes(32); // stands in for chatserver's franking stamp
    io.to(roomId).emit("msg", { room_id: roomId, ts, from: memberId, env: p.env, stamp, seq });
    ack(ok({ seq, ts }));
  });
});

async function main() {
  if (redisUrl) {
    const { createClient } = require("redis");
    const { createShardedAdapter } = require("@socket.io/redis-adapter");
    const pubClient = createClient({ url: redisUrl });
    const subClient = pubClient.duplicate();
    for (const c of [pubClient, subClient]) c.on("error", (err) => console.error("redis:", err));
    await Promise.all([pubClient.connect(), subClient.connect()]);
    io.adapter(createShardedAdapter(pubClient, subClient, { subscriptionMode: "dynamic" }));
  }
  httpServer.listen(port, "127.0.0.1");
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
