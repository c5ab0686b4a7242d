// Questions to a session's host (`qa.ask`), signed by the asker's card key, then sealed to the
// host (mirrors chatserver/e2ee/question.py). HPKE base mode authenticates nobody and the push's
// `from` is the server's word, so the sealed plaintext carries the asker's own signature:
//
//     plaintext = json ‖ Ed25519(asker, DS("question") ‖ room_id ‖ asker_id ‖ host_id ‖ json)
//
// The host opens the blob, then checks the signature against the card of the member the push
// names: a question relabelled by the server, or sealed by anyone but that member, is refused.
// `json` is a type-1 style object (`text`, `consent`).
import { ID_LEN, SIG_LEN, ds } from "./constants.js";
import { E2EEError } from "./errors.js";
import type { Identity, KeyCard } from "./formats.js";
import { concat, ed25519Verify, hpkeOpen, hpkeSeal, utf8 } from "./primitives.js";
import { decodeText } from "./session.js";

export const MAX_QUESTION_JSON = 4096;

/** The bytes an asker signs. */
export const questionMessage = (roomId: Uint8Array, askerId: Uint8Array, hostId: Uint8Array, body: Uint8Array): Uint8Array =>
  concat(ds("question"), roomId, askerId, hostId, body);

/** HPKE info of the sealed question: DS("question") ‖ room_id ‖ asker_id ‖ host_id. */
export const questionSealInfo = (roomId: Uint8Array, askerId: Uint8Array, hostId: Uint8Array): Uint8Array =>
  concat(ds("question"), roomId, askerId, hostId);

/** The question's JSON body, compact: {"text":…,"consent":…}. */
export const questionBody = (text: string, consent: boolean): Uint8Array => utf8(JSON.stringify({ text, consent }));

/** The plaintext to seal to the host: the JSON body followed by the asker's signature. */
export function signQuestion(asker: Identity, roomId: Uint8Array, hostId: Uint8Array, body: Uint8Array): Uint8Array {
  if (roomId.length !== ID_LEN || hostId.length !== ID_LEN || !body.length) {
    throw new E2EEError("bad_length", "ids are 16 bytes and the body is not empty");
  }
  if (body.length > MAX_QUESTION_JSON) throw new E2EEError("bad_length", "question too long");
  return concat(body, asker.sign(questionMessage(roomId, asker.memberId, hostId, body)));
}

/** The JSON body of a question whose signature verifies under the asker's card key. */
export function openQuestion(
  plaintext: Uint8Array,
  roomId: Uint8Array,
  askerId: Uint8Array,
  askerEdPublic: Uint8Array,
  hostId: Uint8Array,
): Uint8Array {
  if (!(plaintext.length > SIG_LEN && plaintext.length <= MAX_QUESTION_JSON + SIG_LEN)) {
    throw new E2EEError("bad_length", "question plaintext size");
  }
  const body = plaintext.slice(0, plaintext.length - SIG_LEN);
  const sig = plaintext.slice(plaintext.length - SIG_LEN);
  if (!ed25519Verify(askerEdPublic, sig, questionMessage(roomId, askerId, hostId, body))) {
    throw new E2EEError("bad_signature", "the question is not signed by the member it names");
  }
  return body;
}

/** Sign and seal a question to one host's card: what `qa.ask` carries as `sealed`. */
export async function sealQuestion(asker: Identity, roomId: Uint8Array, host: KeyCard, body: Uint8Array): Promise<Uint8Array> {
  const plain = signQuestion(asker, roomId, host.memberId, body);
  return hpkeSeal(host.xPublic, questionSealInfo(roomId, asker.memberId, host.memberId), plain);
}

export interface OpenedQuestion {
  text: string;
  consent: boolean;
}

/** Open a question sealed to us (`host`) and check it was signed by the asker's card. */
export async function openSealedQuestion(host: Identity, roomId: Uint8Array, asker: KeyCard, sealed: Uint8Array): Promise<OpenedQuestion> {
  const plain = await hpkeOpen(host.xSeed, questionSealInfo(roomId, asker.memberId, host.memberId), sealed);
  const body = openQuestion(plain, roomId, asker.memberId, asker.edPublic, host.memberId);
  const { text, obj } = decodeText(body);
  return { text, consent: obj["consent"] === true };
}
