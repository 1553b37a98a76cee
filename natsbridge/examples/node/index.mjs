// A Node.js service that exchanges events with a Go service whose
// eventbus is bridged to NATS by natsbridge, written with the official
// client (the "nats" package). It subscribes to the events the Go side
// exports, publishes one event of its own in the wire format (the JSON a
// Python ADWS service writes, with a time zone), waits for one event from
// the Go side, prints it, and exits 0; or exits 1 after 20 seconds.
//
//   node index.mjs nats://127.0.0.1:4222              # core NATS
//   node index.mjs nats://127.0.0.1:4222 jetstream    # through the stream ADWS
//   node index.mjs nats://127.0.0.1:4222 jetstream MY_STREAM
//
// It prints "ready" once it listens, "published <id> <subject>" once its
// event is sent (with JetStream: stored), and "received <event JSON>".
import { randomUUID } from "node:crypto";
import { AckPolicy, DeliverPolicy, connect, headers, nanos } from "nats";
import { DEFAULT_PREFIX, subjectFor } from "./subject.mjs";

// ORIGIN goes in the Adws-Origin header of what this service publishes. A
// natsbridge Bridge imports every message that does not carry its own
// origin; this service skips the messages that carry ORIGIN, its own.
const ORIGIN = "node-example";

const [url = "nats://127.0.0.1:4222", mode = "core", stream = "ADWS"] = process.argv.slice(2);
const utf8 = new TextEncoder();
const text = new TextDecoder();

// decode reads an event in the wire format and checks the fields that a
// Bridge requires, as a consumer in any language should.
function decode(data) {
  const e = JSON.parse(text.decode(data));
  for (const field of ["id", "event_type", "severity", "timestamp"]) {
    if (typeof e[field] !== "string" || e[field] === "") {
      throw new Error(`malformed event: no ${field}`);
    }
  }
  return e;
}

// receiveCore returns the first event from another origin on core NATS:
// at most once, nothing is stored.
async function receiveCore(nc) {
  const sub = nc.subscribe(`${DEFAULT_PREFIX}.>`);
  return async () => {
    for await (const m of sub) {
      if (m.headers?.get("Adws-Origin") === ORIGIN) continue;
      sub.unsubscribe();
      return decode(m.data);
    }
    throw new Error("subscription closed");
  };
}

// receiveJetStream returns the first event from another origin that the
// stream stores from now on, through a consumer of its own, acknowledging
// each message once handled. Delivery is at least once: the same event
// (the same id) may come again, and is skipped.
async function receiveJetStream(nc) {
  const jsm = await nc.jetstreamManager();
  const info = await jsm.consumers.add(stream, {
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.New,
    filter_subject: `${DEFAULT_PREFIX}.>`,
    inactive_threshold: nanos(60_000),
  });
  const consumer = await nc.jetstream().consumers.get(stream, info.name);
  const seen = new Set();
  return async () => {
    try {
      for (;;) {
        const m = await consumer.next({ expires: 5_000 });
        if (m === null) continue;
        if (m.headers?.get("Adws-Origin") === ORIGIN) {
          m.ack();
          continue;
        }
        const e = decode(m.data);
        m.ack(); // after handling it: at least once
        if (seen.has(e.id)) continue;
        seen.add(e.id);
        return e;
      }
    } finally {
      await jsm.consumers.delete(stream, info.name);
    }
  };
}

// publish sends one event from this service: in core mode a plain publish,
// with JetStream one that waits for the stream, with the event id as
// Nats-Msg-Id so that the stream drops a second copy sent on a retry.
async function publish(nc) {
  const event = {
    id: randomUUID(),
    adw_id: "py-7 run.1", // escaped in the subject: py-7%20run%2E1
    event_type: "step_completed",
    source: "node-example",
    severity: "INFO",
    message: "loaded orders into the warehouse",
    timestamp: new Date().toISOString(),
    data: { rows: 1200, table: "orders" },
  };
  const subject = subjectFor(event);
  const h = headers();
  h.set("Adws-Origin", ORIGIN);
  const data = utf8.encode(JSON.stringify(event));
  if (mode === "jetstream") {
    await nc.jetstream().publish(subject, data, { headers: h, msgID: event.id });
  } else {
    nc.publish(subject, data, { headers: h });
    await nc.flush();
  }
  console.log(`published ${event.id} ${subject}`);
}

async function main() {
  const nc = await connect({ servers: url, name: ORIGIN });
  const receive = mode === "jetstream" ? await receiveJetStream(nc) : await receiveCore(nc);
  const received = receive();
  console.log("ready");
  await publish(nc);
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error("no event from the Go side within 20s")), 20_000);
  });
  const event = await Promise.race([received, timeout]);
  clearTimeout(timer);
  console.log(`received ${JSON.stringify(event)}`);
  await nc.drain();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
