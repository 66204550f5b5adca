#!/usr/bin/env node
// evfabric-js: publish or subscribe evfabric events from Node (see README.md).
//   node cli.mjs pub   --url nats://127.0.0.1:4222 --topic lab.temp --count 100 [--reliable] [--format json]
//   node cli.mjs sub   --url ... --topic lab.temp --count 100 [--reliable --durable NAME]
//   node cli.mjs bench-rx --url ... --events 1000000 & node cli.mjs bench-tx --url ... --events 1000000
//       (the raw nats.js peer of `evfabric bench fabric`: pre-encoded batches of 1000 100 B events)
// `sub` prints one JSON line per event, then {"done": n}. `--draft` uses the subject layout
// evf.<partition>.<topic> of servers whose evfabric predates publisher tokens.

import { AckPolicy, connect } from "nats";
import { COLUMNS, Sequencer, decodeMessage, encodeColumns, makeEvent, publishEvents, topicFilter } from "./evfabric.mjs";

const FLAGS = new Set(["draft", "reliable"]); // options without a value

function args(argv) {
  const out = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i].startsWith("--")) {
      const k = argv[i].slice(2);
      out[k] = !FLAGS.has(k) && i + 1 < argv.length && !argv[i + 1].startsWith("--") ? argv[++i] : true;
    } else out._.push(argv[i]);
  }
  return out;
}

const a = args(process.argv.slice(2));
const cmd = a._[0];
const count = Number(a.count ?? 10);
const draft = Boolean(a.draft);
const nc = await connect({ servers: a.url ?? "nats://127.0.0.1:4222", name: "evfabric-js" });

function print(obj) {
  // bytes as {"$bytes": base64}, as in tests/wire/vectors
  const plain = (k, v) => (v && v.type === "Buffer" && Array.isArray(v.data)
    ? { $bytes: Buffer.from(v.data).toString("base64") } : v);
  process.stdout.write(JSON.stringify(obj, plain) + "\n");
}

if (cmd === "pub") {
  const js = nc.jetstream();
  const seq = new Sequencer();
  const batch = Number(a.batch ?? 10);
  const delivery = a.reliable ? "reliable" : "best_effort";
  for (let i = 0; i < count; i += batch) {
    const events = [];
    for (let j = i; j < Math.min(count, i + batch); j++) {
      events.push(makeEvent(a.topic, { i: j, lang: "js", reading: 20 + j / 10 }, { source: a.source ?? "node-probe",
        delivery, extra: { run: "js1" } }));
    }
    await publishEvents(nc, events, { reliable: Boolean(a.reliable), format: a.format ?? "columns", draft,
      sequencer: seq, js });
  }
  await nc.flush();
  print({ published: count });
} else if (cmd === "sub") {
  let n = 0;
  const seen = (ev) => {
    print(ev);
    n++;
  };
  if (a.reliable) {
    // a durable pull consumer on the topic's stream, acknowledging each message once handled
    const jsm = await nc.jetstreamManager();
    const filter = topicFilter(a.topic, { draft });
    const stream = await jsm.streams.find(filter);
    await jsm.consumers.add(stream, { durable_name: a.durable ?? "evfabric-js", ack_policy: AckPolicy.Explicit,
      filter_subject: filter });
    const consumer = await nc.jetstream().consumers.get(stream, a.durable ?? "evfabric-js");
    print({ ready: stream });
    const messages = await consumer.consume({ max_messages: 256 });
    for await (const m of messages) {
      for (const ev of decodeMessage(m)) seen(ev);
      m.ack();
      if (n >= count) break;
    }
  } else {
    const sub = nc.subscribe(topicFilter(a.topic, { draft }));
    await nc.flush();
    print({ ready: true });
    for await (const m of sub) {
      for (const ev of decodeMessage(m)) seen(ev);
      if (n >= count) break;
    }
  }
  print({ done: n });
} else if (cmd === "bench-rx") {
  // the raw nats.js peer of evfabric's best_effort_e2e_100B, receiving side: counts the events of
  // each message (its Evf-Count header, no decoding) until --events arrived; prints the epoch ms of
  // the last arrival
  const total = Number(a.events ?? 1000000);
  let got = 0;
  let last = 0;
  const sub = nc.subscribe(a.subject ?? "bench.js.x");
  await nc.flush();
  print({ ready: true });
  for await (const m of sub) {
    got += Number(m.headers?.get("Evf-Count") ?? 1);
    if (got >= total) {
      last = performance.timeOrigin + performance.now();
      break;
    }
  }
  print({ count: got, last_ms: last });
} else if (cmd === "bench-tx") {
  // sending side: one columnar batch of --batch events of ~--size bytes, encoded once, sent until
  // --events went out (flushing every 64 messages to bound the outbound buffer)
  const total = Number(a.events ?? 1000000);
  const per = Number(a.batch ?? 1000);
  const events = Array.from({ length: per }, (_, i) => makeEvent("bench.js.x", { p: "x".repeat(Math.max(0,
    Number(a.size ?? 100) - 60)), i }, { source: "bench" }));
  const payload = encodeColumns(events);
  const seq = new Sequencer();
  const t0 = performance.timeOrigin + performance.now();
  let k = 0;
  for (let sent = 0; sent < total; sent += per, k++) {
    nc.publish(a.subject ?? "bench.js.x", payload, { headers: seq.headers("bench.js.x", per, COLUMNS, false) });
    if (k % 64 === 63) await nc.flush();
  }
  await nc.flush();
  print({ sent: total, t0_ms: t0, bytes_per_event: payload.length / per });
} else {
  process.stderr.write("usage: cli.mjs pub|sub|bench-rx|bench-tx --url URL --topic TOPIC [--count N] [--reliable]\n");
  process.exitCode = 2;
}
await nc.drain();
