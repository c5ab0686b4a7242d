// The member list of the host tools: mute for a while or until unmuted, remove (optionally with a
// room ban), and role changes for hosts. Only the controls the server would accept are shown
// (rooms/guards.py `may_act_on`, rooms/moderation.py `set_role`). Text-only rendering.
import type { MemberInfo, RoomSession } from "../client.js";
import { h } from "../dom.js";

const RANK: Record<string, number> = { member: 0, moderator: 1, host: 2, therapist: 2 };
const MUTE_CHOICES: Array<[string, string]> = [["300", "5 minutes"], ["900", "15 minutes"], ["", "Until unmuted"]];
import { clock as clockMs } from "../dom.js";
const clock = (s: number): string => clockMs(s * 1000);

/** "muted until 14:05", "muted", or "" when not (or no longer) muted. */
export function mutedText(until: number | null | undefined, nowS: number = Date.now() / 1000): string {
  if (until === null || until === undefined || until <= nowS) return "";
  return Number.isFinite(until) ? `muted until ${clock(until)}` : "muted";
}

/** May our role mute or remove this member? (staff, not ourselves, never the owner's seat). Our
 * own role is the server's (it enforces what we may do); the target's is its trusted role
 * (client.ts MemberInfo.role: signed by a host, or "member"). */
export function mayActOn(room: RoomSession, id: string, target: MemberInfo): boolean {
  const mine = RANK[room.role] ?? 0;
  if (mine < 1 || id === room.memberId || id === room.view["host_id"]) return false;
  return mine >= 2 || (RANK[target.role] ?? 0) < mine;
}

/** May our role change this member's role? (hosts only; never ourselves or the owner). */
export function mayChangeRole(room: RoomSession, id: string): boolean {
  return (RANK[room.role] ?? 0) >= 2 && id !== room.memberId && id !== room.view["host_id"];
}

type Act = (fn: () => Promise<unknown>) => Promise<void>;

function small(text: string, onClick: () => unknown, label: string, cls = "secondary small"): HTMLButtonElement {
  const b = h("button", { type: "button", class: cls, "aria-label": label }, text) as HTMLButtonElement;
  b.addEventListener("click", () => void onClick());
  return b;
}

/** One row of the member list, with the actions our role allows on that member. */
export function memberRow(room: RoomSession, id: string, m: MemberInfo, act: Act, say: (t: string) => void): HTMLElement {
  const who = m.pseudonym;
  const ctl = (ev: string, fields: Record<string, unknown>, done: string) => () =>
    act(async () => {
      // member.role is signed by us for exactly this member and role (RoomSession.setRole).
      if (ev === "member.role") await room.setRole(id, String(fields["role"]));
      else await room.control(ev, { member_id: id, ...fields });
      say(done);
    });
  const muted = mutedText(m.mutedUntil);
  const actions = h("span", { class: "actions" });
  if (mayActOn(room, id, m)) {
    const sel = h(
      "select",
      { "aria-label": `Mute ${who} for`, class: "small" },
      ...MUTE_CHOICES.map(([v, t]) => h("option", { value: v }, t)),
    ) as HTMLSelectElement;
    const mute = () => act(async () => {
      const fields: Record<string, unknown> = { member_id: id };
      if (sel.value) fields["duration_s"] = Number(sel.value);
      await room.control("member.mute", fields);
      say(`${who} is muted.`);
    });
    actions.append(sel, small("Mute", mute, `Mute ${who}`));
    if (muted) actions.append(small("Unmute", ctl("member.unmute", {}, `${who} can write again.`), `Unmute ${who}`));
    const remove = small("Remove", () => {
      const ban = h("input", { type: "checkbox", id: `ban-${id}` }) as HTMLInputElement;
      const confirm = h(
        "span",
        { class: "confirm", role: "group", "aria-label": `Remove ${who}?` },
        h("span", { class: "choice" }, ban, h("label", { for: `ban-${id}` }, "and ban from this room")),
        small("Yes, remove", () => act(async () => {
          await room.control("member.remove", { member_id: id, ban: ban.checked });
          say(ban.checked ? `${who} was removed and banned from this room.` : `${who} was removed.`);
        }), `Yes, remove ${who}`, "danger small"),
        small("Cancel", () => confirm.replaceWith(remove), `Cancel removing ${who}`),
      );
      remove.replaceWith(confirm);
      ban.focus();
    }, `Remove ${who}`);
    actions.append(remove);
  }
  if (mayChangeRole(room, id)) {
    if (m.role !== "host") actions.append(small("Make co-host", ctl("member.role", { role: "host" }, `${who} is now a co-host.`), `Make co-host: ${who}`));
    if (m.role !== "moderator") actions.append(small("Make moderator", ctl("member.role", { role: "moderator" }, `${who} is now a moderator.`), `Make moderator: ${who}`));
    // Also for a role the server claims but no host signed (shown as a member): it can be undone.
    if (m.role !== "member" || m.claimedRole !== "member") actions.append(small("Back to member", ctl("member.role", { role: "member" }, `${who} is a member again.`), `Back to member: ${who}`));
  }
  // The label is the trusted role: a moderator or co-host only with a host's signed statement.
  return h(
    "li",
    { "data-member": id },
    h("span", { class: "name" }, who),
    m.role !== "member" ? h("span", { class: "tag" }, ` · ${m.role === "host" && id !== room.view["host_id"] ? "co-host" : m.role}`) : null,
    muted ? h("span", { class: "tag muted-tag" }, ` · ${muted}`) : null,
    actions.childNodes.length ? actions : null,
  );
}
