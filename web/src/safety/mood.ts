// Mood check-in and check-out, stored only in this browser (localStorage). Pure trend logic.

export interface MoodEntry {
  t: number; // ms
  phase: "in" | "out";
  v: number; // 1 (very low) .. 5 (very good)
}

export const MOOD_KEY = "ps.mood";
const MAX_ENTRIES = 60;

export function loadMood(store: Pick<Storage, "getItem"> | null): MoodEntry[] {
  try {
    const raw = JSON.parse(store?.getItem(MOOD_KEY) ?? "[]");
    return Array.isArray(raw) ? raw.filter((e) => e && (e.phase === "in" || e.phase === "out") && Number.isInteger(e.v) && e.v >= 1 && e.v <= 5) : [];
  } catch {
    return [];
  }
}

export function addMood(store: Pick<Storage, "getItem" | "setItem"> | null, entry: MoodEntry): MoodEntry[] {
  const all = [...loadMood(store), entry].slice(-MAX_ENTRIES);
  try {
    store?.setItem(MOOD_KEY, JSON.stringify(all));
  } catch {
    /* storage full or disabled: the check-in is simply not kept */
  }
  return all;
}

/** True when the mood keeps dropping: each of the last three check-ins is lower than the one
 * before, or the last three sessions each ended lower than they began. */
export function keepsDropping(entries: MoodEntry[]): boolean {
  const ins = entries.filter((e) => e.phase === "in").map((e) => e.v);
  if (ins.length >= 3) {
    const [a, b, c] = ins.slice(-3) as [number, number, number];
    if (a > b && b > c) return true;
  }
  const pairs: Array<[number, number]> = [];
  for (let i = 1; i < entries.length; i++) {
    const prev = entries[i - 1]!;
    const cur = entries[i]!;
    if (prev.phase === "in" && cur.phase === "out") pairs.push([prev.v, cur.v]);
  }
  return pairs.length >= 3 && pairs.slice(-3).every(([a, b]) => b < a);
}
