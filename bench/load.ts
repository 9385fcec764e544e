// The REST load generator of bench:send, run as its own process so that its HTTP client does not
// share the server's event loop. Usage: load.ts URL KEY TOTAL CONCURRENCY [RATE_PER_SECOND]
// With LOAD_DIALECT=smsgate, KEY is `login:password` and each send goes through SMSGate's own npm
// client library (`android-sms-gateway`, Basic auth, `POST /3rdparty/v1/message`): the id printed is
// then SMSGate's id of the message.
// Without a rate, CONCURRENCY clients send back to back (a burst); with one, sends start on a fixed
// schedule (open loop) with at most CONCURRENCY in flight. Prints one JSON line per send: the HTTP
// status, the message id when accepted, and the wall-clock times (ms) the request left and the
// answer came back.
import { createServer } from "node:http";
import ClientModule from "android-sms-gateway";

const [url, key, total, concurrency, rate] = process.argv.slice(2);

// Node loads its HTTP client (undici) at the first fetch: about 40 ms here, which would otherwise be
// counted as the first send's latency. One fetch from a server of this process's own loads it first.
const warm = createServer((_request, response) => response.end("{}")).listen(0, "127.0.0.1");
await new Promise((resolve) => warm.once("listening", resolve));
const warmAddress = warm.address();
if (warmAddress !== null && typeof warmAddress === "object") {
  await (await fetch(`http://127.0.0.1:${warmAddress.port}/`, { method: "POST", body: "{}" })).json();
}
warm.close();
warm.closeAllConnections();

// The package ships ES modules without `"type": "module"`: its types say CommonJS, Node loads ESM.
const Client = ("default" in ClientModule ? ClientModule.default : ClientModule) as typeof ClientModule.default;
const call = async <T>(method: string, target: string, body: unknown, headers: Record<string, string> = {}) => {
  const response = await fetch(target, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  if (!response.ok) {
    process.stderr.write(`send answered ${response.status} ${text}\n`);
    process.exit(1);
  }
  return (text === "" ? undefined : JSON.parse(text)) as T;
};
const [login = "", password = ""] = (key ?? "").split(":");
const smsGate =
  process.env.LOAD_DIALECT === "smsgate"
    ? new Client(
        login,
        password,
        {
          get: (target, headers) => call("GET", target, undefined, headers),
          post: (target, body, headers) => call("POST", target, body, headers),
          put: (target, body, headers) => call("PUT", target, body, headers),
          patch: (target, body, headers) => call("PATCH", target, body, headers),
          delete: (target, headers) => call("DELETE", target, undefined, headers),
        },
        `${url}/3rdparty/v1`,
      )
    : undefined;

const messages = Number(total);
const perSecond = rate === undefined ? undefined : Number(rate);
const now = () => performance.timeOrigin + performance.now();
const started = now();

async function sendOne(i: number): Promise<void> {
  if (perSecond !== undefined) {
    const due = started + (i * 1000) / perSecond;
    const wait = due - now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
  if (smsGate !== undefined) {
    const sentAt = now();
    const state = await smsGate.send({ message: `bench message ${i}`, phoneNumbers: ["+14155552671"] });
    process.stdout.write(`${JSON.stringify({ status: 202, id: state.id, sentAt, acceptedAt: now() })}\n`);
    return;
  }
  const sentAt = now();
  const response = await fetch(`${url}/api/v1/sms/send`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ to: "+14155552671", message: `bench message ${i}` }),
  });
  const body = (await response.json()) as { message_id?: string; error?: string };
  const acceptedAt = now();
  if (response.status !== 202 && response.status !== 503) {
    process.stderr.write(`send answered ${response.status} ${JSON.stringify(body)}\n`);
    process.exit(1);
  }
  const retryAfter = response.headers.get("retry-after");
  process.stdout.write(
    `${JSON.stringify({ status: response.status, id: body.message_id, error: body.error, retryAfter, sentAt, acceptedAt })}\n`,
  );
}

let next = 0;
await Promise.all(
  Array.from({ length: Number(concurrency) }, async () => {
    while (next < messages) await sendOne(next++);
  }),
);
