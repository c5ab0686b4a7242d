// Crisis and self-harm phrase detection over the reviewable lists in ./phrases/. Pure: no DOM.
// A match only offers help (never blocks sending, never reports anyone).
import de from "./phrases/de.json";
import en from "./phrases/en.json";
import es from "./phrases/es.json";
import fr from "./phrases/fr.json";
import it from "./phrases/it.json";
import nl from "./phrases/nl.json";
import pl from "./phrases/pl.json";
import pt from "./phrases/pt.json";

export interface PhraseList {
  language: string;
  reviewed: string;
  categories: Record<string, string[]>;
}

export const PHRASE_LISTS: PhraseList[] = [en, de, fr, es, it, nl, pt, pl];
export type Category = "suicide" | "self_harm" | "despair";

/** Lower-case, fold accents, unify apostrophes and spaces: "Can’t  GO on" -> "can't go on". */
export function normalize(text: string): string {
  return text
    .normalize("NFKD")
    .replace(/\p{M}+/gu, "")
    .toLowerCase()
    .replace(/[\u2018\u2019\u02bc`´]/g, "'")
    .replace(/[\s\u00a0]+/g, " ")
    .trim();
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

function compile(lists: PhraseList[]): Array<[string, RegExp]> {
  const out: Array<[string, RegExp]> = [];
  const byCat = new Map<string, string[]>();
  for (const l of lists)
    for (const [cat, phrases] of Object.entries(l.categories)) byCat.set(cat, [...(byCat.get(cat) ?? []), ...phrases.map(normalize)]);
  for (const [cat, phrases] of byCat) {
    const alts = [...new Set(phrases)].sort((a, b) => b.length - a.length).map(escape).join("|");
    out.push([cat, new RegExp(`(?:^|[^\\p{L}\\p{N}])(?:${alts})(?=$|[^\\p{L}\\p{N}])`, "u")]);
  }
  return out;
}

const COMPILED = compile(PHRASE_LISTS);

/** The first category whose phrases occur in `text` as whole words, or null. */
export function detect(text: string): Category | null {
  const t = normalize(text);
  if (!t) return null;
  for (const [cat, re] of COMPILED) if (re.test(t)) return cat as Category;
  return null;
}

/** Whole-word match of any of the member's own words (topics to always collapse). */
export function mentions(text: string, words: string[]): string | null {
  const t = normalize(text);
  for (const w of words) {
    const n = normalize(w);
    if (n && new RegExp(`(?:^|[^\\p{L}\\p{N}])${escape(n)}(?=$|[^\\p{L}\\p{N}])`, "u").test(t)) return w;
  }
  return null;
}
