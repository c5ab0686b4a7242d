// Crisis lines chosen from the browser's language and time zone, never from the address. Pure.

export interface Line {
  name: string;
  countries: string[];
  languages?: string[];
  phone?: string;
  sms?: string;
  url?: string;
  hours?: string;
  description?: string;
}

export interface Resources {
  resources: Line[];
  directory?: Line;
  exit_url?: string;
}

/** Used until /resources.json arrives, or if it cannot be fetched. */
export const FALLBACK: Resources = {
  resources: [],
  directory: {
    name: "Find a Helpline",
    countries: ["*"],
    url: "https://findahelpline.com",
    description: "Free, confidential helplines in many countries, searchable by country and topic.",
  },
  exit_url: "https://www.bbc.co.uk/weather",
};

// IANA time zones that name one country (the common ones; others fall back to the language).
const ZONES: Record<string, string> = {
  "Europe/London": "GB", "Europe/Belfast": "GB", "Europe/Dublin": "IE", "Europe/Berlin": "DE", "Europe/Busingen": "DE",
  "Europe/Vienna": "AT", "Europe/Zurich": "CH", "Europe/Paris": "FR", "Europe/Madrid": "ES", "Atlantic/Canary": "ES",
  "Europe/Rome": "IT", "Europe/Amsterdam": "NL", "Europe/Brussels": "BE", "Europe/Warsaw": "PL", "Europe/Lisbon": "PT",
  "America/New_York": "US", "America/Chicago": "US", "America/Denver": "US", "America/Phoenix": "US",
  "America/Los_Angeles": "US", "America/Anchorage": "US", "Pacific/Honolulu": "US", "America/Detroit": "US",
  "America/Toronto": "CA", "America/Vancouver": "CA", "America/Edmonton": "CA", "America/Winnipeg": "CA",
  "America/Halifax": "CA", "America/St_Johns": "CA", "America/Regina": "CA", "America/Montreal": "CA",
  "Australia/Sydney": "AU", "Australia/Melbourne": "AU", "Australia/Brisbane": "AU", "Australia/Perth": "AU",
  "Australia/Adelaide": "AU", "Australia/Hobart": "AU", "Australia/Darwin": "AU", "Pacific/Auckland": "NZ",
  "America/Sao_Paulo": "BR", "America/Mexico_City": "MX", "Asia/Kolkata": "IN", "Asia/Calcutta": "IN",
};

/** The country the browser suggests: a region in the preferred language, else the time zone. */
export function guessCountry(languages: readonly string[], timeZone: string | undefined): string | null {
  for (const tag of languages) {
    const region = /^[a-z]{2,3}(?:-[A-Za-z]{4})?-([A-Za-z]{2})\b/.exec(tag)?.[1];
    if (region) return region.toUpperCase();
  }
  return (timeZone && ZONES[timeZone]) || null;
}

/** Lines for this browser: its country first (in its languages first), else lines in its languages. */
export function pickLines(res: Resources, languages: readonly string[], timeZone: string | undefined, max = 4): Line[] {
  const langs = languages.map((l) => l.toLowerCase().split("-")[0]!);
  const country = guessCountry(languages, timeZone);
  const speaks = (l: Line) => !l.languages?.length || l.languages.some((x) => langs.includes(x));
  let chosen = country ? res.resources.filter((l) => l.countries.includes(country)) : [];
  chosen.sort((a, b) => Number(speaks(b)) - Number(speaks(a)));
  if (!chosen.length) {
    const primary = langs[0];
    chosen = res.resources.filter((l) => primary !== undefined && l.languages?.includes(primary));
  }
  return chosen.slice(0, max);
}
