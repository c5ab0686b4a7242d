// The front page: the directory of listed rooms (refreshed every 15 s) and the form that starts a room.
import { ChatError, type DirectoryEntry } from "../client.js";
import { verifiedHostName } from "../console/credentials.js";
import { h } from "../dom.js";
import { alertBox, connection, nextId, onLeaveView, setView, showError } from "../page.js";
import { errorText } from "../room/states.js";
import { joinForm, roomAddress } from "./join.js";

export async function directory(): Promise<void> {
  const list = h("ul", { class: "rooms", "aria-describedby": "rooms-status" });
  const status = h("p", { id: "rooms-status", class: "muted", role: "status" }, "Looking for open rooms…");
  const filterId = nextId("filter");
  const filter = h("input", { id: filterId, type: "search", maxlength: "64", autocomplete: "off" }) as HTMLInputElement;
  const refresh = h("button", { type: "button", class: "secondary" }, "Refresh");

  async function load(): Promise<void> {
    try {
      const rooms = await connection().listRooms(filter.value.trim() || undefined);
      list.replaceChildren(
        ...rooms.map((r) => {
          const kind = r.kind === "session" ? "Session with a therapist" : "Peer support";
          const people = r.members === 1 ? "1 person here" : `${r.members} people here`;
          return h(
            "li",
            { class: "room-card" },
            h("h3", {}, r.topic),
            h("p", { class: "meta" }, h("span", { class: `kind kind-${r.kind === "session" ? "session" : "peer"}` }, kind), " · ", people),
            r.kind === "session" ? sessionInfo(r) : null,
            h("a", { class: "button", href: `/r/${r.room_id}`, "data-nav": `/r/${r.room_id}`, "aria-label": `Join ${r.topic}` }, "Join"),
          );
        }),
      );
      status.textContent = rooms.length
        ? `${rooms.length} open ${rooms.length === 1 ? "room" : "rooms"}.`
        : filter.value.trim()
          ? "No open rooms match that topic. You can start one below."
          : "No rooms are open right now. You can start one below.";
    } catch (e) {
      status.textContent =
        e instanceof ChatError && e.code === "connection_lost"
          ? "Connecting to the server…"
          : "Could not load the rooms. Try Refresh.";
      if (e instanceof ChatError && e.code === "connection_lost") {
        void connection().waitOnline().then(load);
      }
    }
  }

  let debounce: number | undefined;
  filter.addEventListener("input", () => {
    window.clearTimeout(debounce);
    debounce = window.setTimeout(load, 300);
  });
  refresh.addEventListener("click", () => void load());

  setView(
    "Open rooms",
    h(
      "section",
      { class: "intro", "aria-labelledby": "intro-h" },
      h("h1", { id: "intro-h" }, "You are welcome here"),
      h(
        "p",
        {},
        "Talk with others who understand, under a name you choose. No sign-up. Messages are encrypted on your device before they leave it.",
      ),
    ),
    h(
      "section",
      { class: "panel", "aria-labelledby": "open-h" },
      h("h2", { id: "open-h" }, "Open rooms"),
      h("div", { class: "row" }, h("label", { for: filterId }, "Find a topic"), filter, refresh),
      status,
      list,
    ),
    createForm(),
  );
  await load();
  const timer = window.setInterval(() => void load(), 15000);
  onLeaveView(() => window.clearInterval(timer));
}

/** A listed session's start time (local, e.g. "Thu 19:00") and its host's name, shown only once
 * the badge verifies against this server's key (verifiedHostName, as in the waiting room). */
function sessionInfo(r: DirectoryEntry): HTMLElement {
  const start = Number(r.starts_at ?? r.created_at) * 1000;
  const when = new Date(start).toLocaleString([], { weekday: "short", hour: "2-digit", minute: "2-digit" });
  const host = h("span", { class: "verified" });
  void verifiedHostName(r.badge, r.room_id, r.host_id).then((name) => {
    if (name) host.textContent = ` · With ${name} (verified therapist)`;
  });
  return h("p", { class: "meta session-info" }, h("span", {}, `${start > Date.now() ? "Starts" : "Started"} ${when}`), host);
}

function createForm(): HTMLElement {
  const err = alertBox();
  const topicId = nextId("topic");
  const titleId = nextId("title");
  const topic = h("input", { id: topicId, name: "topic", maxlength: "64", autocomplete: "off", "aria-describedby": `${topicId}-hint` }) as HTMLInputElement;
  const title = h("input", { id: titleId, name: "title", maxlength: "100", autocomplete: "off", "aria-describedby": `${titleId}-hint` }) as HTMLInputElement;
  const vanishId = nextId("vanish");
  const vanish = h(
    "select",
    { id: vanishId, name: "disappear" },
    h("option", { value: "0" }, "Never"),
    h("option", { value: "300" }, "After 5 minutes"),
    h("option", { value: "3600" }, "After 1 hour"),
    h("option", { value: "86400" }, "After 1 day"),
  ) as HTMLSelectElement;
  const vanishRow = h("div", { class: "field" }, h("label", { for: vanishId }, "Messages disappear"), vanish, h("p", { class: "hint" }, "From every screen, for everyone. Shown to all who join."));
  const listed = h("input", { type: "radio", name: "visibility", value: "listed", id: "vis-listed", checked: true }) as HTMLInputElement;
  const priv = h("input", { type: "radio", name: "visibility", value: "private", id: "vis-private" }) as HTMLInputElement;
  const topicRow = h("div", { class: "field" }, h("label", { for: topicId }, "Topic"), topic, h("p", { id: `${topicId}-hint`, class: "hint" }, "For example: sleep, grief, anxiety at work."));
  const titleRow = h("div", { class: "field", hidden: true }, h("label", { for: titleId }, "Name (optional)"), title, h("p", { id: `${titleId}-hint`, class: "hint" }, "Encrypted: only people with the link can read it."));
  const update = () => {
    topicRow.hidden = !listed.checked;
    titleRow.hidden = listed.checked;
    topic.required = listed.checked;
  };
  listed.addEventListener("change", update);
  priv.addEventListener("change", update);
  const submit = h("button", { type: "submit" }, "Start the room");
  const form = h(
    "form",
    { class: "panel", "aria-labelledby": "create-h", novalidate: true },
    h("h2", { id: "create-h" }, "Start a room"),
    h(
      "fieldset",
      {},
      h("legend", {}, "Who can find it"),
      h("div", { class: "choice" }, listed, h("label", { for: "vis-listed" }, "Listed: anyone can find it by its topic")),
      h("div", { class: "choice" }, priv, h("label", { for: "vis-private" }, "Private: only people you send the link to")),
    ),
    topicRow,
    titleRow,
    vanishRow,
    err,
    submit,
  ) as HTMLFormElement;
  update();
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    err.hidden = true;
    if (listed.checked && !topic.value.trim()) {
      showError(err, "Please give the room a topic so people can find it.");
      topic.focus();
      return;
    }
    submit.setAttribute("disabled", "");
    try {
      const { link } = await connection().createRoom({
        listed: listed.checked,
        topic: topic.value.trim(),
        title: title.value.trim() || undefined,
        disappearAfterS: Number(vanish.value) || undefined,
      });
      roomAddress(`/r${link.secret ? "" : `/${link.roomId}`}`);
      joinForm(link, true);
    } catch (e) {
      showError(err, errorText(e, "Could not start the room."));
    } finally {
      submit.removeAttribute("disabled");
    }
  });
  return form;
}
