// evfabric events from JavaScript: the wire format of docs/wire.md (version 1), on npm `nats`.
//
// Subjects evf.<publisher>.<partition>.<topic>; headers Content-Type, Evf-Version, Evf-Stream,
// Evf-Seq, Evf-Count, Evf-Since (and Nats-Msg-Id for reliable publishes); payloads as columnar MessagePack
// batches (what evfabric writes by default) or JSON row batches. Receivers take an event's topic and
// publisher from the subject, never from the payload.

import { randomBytes } from "node:crypto";
import { decode, encode } from "@msgpack/msgpack";
import { headers as natsHeaders } from "nats";

export const COLUMNS = "application/vnd.evfabric.columns+msgpack";
export const ROWS_MSGPACK = "application/vnd.evfabric.events+msgpack";
export const ROWS_JSON = "application/vnd.evfabric.events+json";
const HEADER_FIELDS = ["source", "type", "seq", "delivery", "ttl", "key", "extra"];
const DEFAULTS = { type: "evfabric.event", seq: 0, delivery: "best_effort", ttl: null, key: null };

// --- subjects ------------------------------------------------------------------------------------

/** The subject an event of `topic` travels on (`draft`: the older evf.<partition>.<topic>). */
export function topicSubject(topic, { publisher = "_", partition = 0, draft = false } = {}) {
  return draft ? `evf.${partition}.${topic}` : `evf.${publisher}.${partition}.${topic}`;
}

/** The NATS filter for every subject of `topic` (any publisher, any partition). */
export function topicFilter(topic, { draft = false } = {}) {
  return draft ? `evf.*.${topic}` : `evf.*.*.${topic}`;
}

/** {publisher, partition, topic} of an evfabric subject (either layout); throws if it is not one. */
export function parseSubject(subject) {
  const t = subject.split(".");
  if (t[0] !== "evf" || t.length < 3) throw new Error(`not an evfabric subject: ${subject}`);
  if (t.length >= 4 && /^\d+$/.test(t[2])) {
    return { publisher: t[1] === "_" ? null : t[1], partition: Number(t[2]), topic: t.slice(3).join(".") };
  }
  if (/^\d+$/.test(t[1])) return { publisher: null, partition: Number(t[1]), topic: t.slice(2).join(".") };
  throw new Error(`no partition number in ${subject}`);
}

// --- events --------------------------------------------------------------------------------------

const NODE = randomBytes(6).toString("hex"); // 12 hex digits, per process
let counter = 16 ** 9;

/** A new event id: 11 hex of milliseconds, 12 of node, 10 of counter (sortable by creation time). */
export function newId(ms = Date.now()) {
  return ms.toString(16).padStart(11, "0") + NODE + (counter++).toString(16).padStart(10, "0");
}

/** An event as evfabric has it (defaults filled in). */
export function makeEvent(topic, body = {}, { source, type, seq, delivery, ttl, key, extra } = {}) {
  if (!source) throw new Error("an event needs a source (the publisher's component id)");
  const now = Date.now();
  return {
    id: newId(now), topic, source, time: Math.round(now * 1000) / 1e6,
    type: type ?? DEFAULTS.type, seq: seq ?? 0, delivery: delivery ?? "best_effort",
    ttl: ttl ?? null, key: key ?? null, extra: extra ?? {}, body,
  };
}

// --- encoding --------------------------------------------------------------------------------------

function sameValue(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The columnar batch ([1, shared, columns], docs/wire.md 4.2) of events on one topic. */
export function encodeColumns(events) {
  const columns = { id: events.map((e) => e.id), time: events.map((e) => e.time), body: events.map((e) => e.body) };
  const shared = {};
  for (const f of HEADER_FIELDS) {
    const values = events.map((e) => e[f] ?? (f === "extra" ? {} : DEFAULTS[f] ?? null));
    if (values.every((v) => sameValue(v, values[0]))) {
      const v = values[0];
      const isDefault = f === "extra" ? Object.keys(v).length === 0 : sameValue(v, DEFAULTS[f]);
      if (f === "source" || !isDefault) shared[f] = v;
    } else {
      columns[f] = values;
    }
  }
  return encode([1, shared, columns]);
}

/** A JSON row batch (every field, topic included). */
export function encodeRowsJson(events) {
  return new TextEncoder().encode(JSON.stringify(events));
}

/** Per-subject publisher sequence state: one Evf-Stream per connection, Evf-Seq per subject. */
export class Sequencer {
  constructor() {
    this.stream = randomBytes(8).toString("hex");
    this.next = new Map();
    this.since = new Map(); // subject -> Evf-Since: when its sequence began (µs since the epoch)
  }

  /** NATS headers for a message of `count` events on `subject`; `reliable` adds Nats-Msg-Id. */
  headers(subject, count, contentType, reliable) {
    const seq = this.next.get(subject) ?? 1;
    this.next.set(subject, seq + count);
    if (seq === 1) this.since.set(subject, String(Date.now() * 1000));
    const h = natsHeaders();
    h.set("Content-Type", contentType);
    h.set("Evf-Version", "1");
    h.set("Evf-Stream", this.stream);
    h.set("Evf-Seq", String(seq));
    h.set("Evf-Count", String(count));
    h.set("Evf-Since", this.since.get(subject));
    if (reliable) h.set("Nats-Msg-Id", `${this.stream}-${seq}-${subject}`);
    return h;
  }
}

// --- decoding --------------------------------------------------------------------------------------

function fromColumns(payload, topic, publisher) {
  const batch = decode(payload);
  if (!Array.isArray(batch) || batch[0] !== 1 || batch.length !== 3) throw new Error("not a columnar batch");
  const [, shared, cols] = batch;
  let ids = cols.id;
  const n = cols.time.length;
  if (!Array.isArray(ids)) {
    ids = Array.from({ length: n }, (_, i) => ids.prefix + (ids.first + i).toString(16).padStart(ids.width, "0"));
  }
  for (const [f, col] of Object.entries({ ...cols, id: ids })) {
    if (!Array.isArray(col) || col.length !== n) throw new Error(`column ${f} does not hold ${n} values`);
    if (f in shared) throw new Error(`field ${f} is both shared and a column`);
  }
  return ids.map((id, i) => {
    const ev = { id, topic, time: cols.time[i], body: cols.body[i], publisher };
    for (const f of HEADER_FIELDS) {
      ev[f] = f in cols ? cols[f][i] : f in shared ? shared[f] : f === "extra" ? {} : DEFAULTS[f] ?? null;
    }
    return ev;
  });
}

function fromRows(rows, topic, publisher) {
  return rows.map((r) => ({ ...DEFAULTS, extra: {}, body: {}, ...r, topic, publisher }));
}

/** The events of a received NATS message `msg` (topic and publisher from its subject). */
export function decodeMessage(msg) {
  const { topic, publisher } = parseSubject(msg.subject);
  const version = msg.headers?.get("Evf-Version");
  if (version && version !== "1") throw new Error(`unsupported wire version ${version}`);
  const ctype = msg.headers?.get("Content-Type") || "";
  if (ctype.startsWith(COLUMNS)) return fromColumns(msg.data, topic, publisher);
  if (ctype.startsWith(ROWS_JSON)) return fromRows(JSON.parse(new TextDecoder().decode(msg.data)), topic, publisher);
  if (ctype.startsWith(ROWS_MSGPACK) || ctype === "") return fromRows(decode(msg.data), topic, publisher);
  throw new Error(`content type ${ctype} is not an evfabric batch`);
}

// --- a small client ------------------------------------------------------------------------------

/** Publish `events` (one topic) as one message; reliable ones through JetStream, acknowledged. */
export async function publishEvents(nc, events, { reliable = false, format = "columns", draft = false, sequencer,
  publisher = "_", js } = {}) {
  const subject = topicSubject(events[0].topic, { publisher, draft });
  const payload = format === "json" ? encodeRowsJson(events) : encodeColumns(events);
  const h = sequencer.headers(subject, events.length, format === "json" ? ROWS_JSON : COLUMNS, reliable);
  if (reliable) {
    const ack = await js.publish(subject, payload, { headers: h, msgID: h.get("Nats-Msg-Id") });
    return ack.seq;
  }
  nc.publish(subject, payload, { headers: h });
  return 0;
}
