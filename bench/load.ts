// The REST load generator of bench:send, run as its own process so that its HTTP client does not
// share the server's event loop. Prints one JSON line per accepted send: the message id and the
// wall-clock times (ms, sub-millisecond) the request left and the 202 came back.
const [url, key, total, concurrency] = process.argv.slice(2);
const messages = Number(total);
const now = () => performance.timeOrigin + performance.now();

let next = 0;
await Promise.all(
  Array.from({ length: Number(concurrency) }, async () => {
    while (next < messages) {
      const i = next++;
      const sentAt = now();
      const response = await fetch(`${url}/api/v1/sms/send`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({ to: "+14155552671", message: `bench message ${i}` }),
      });
      const body = (await response.json()) as { message_id?: string };
      if (response.status !== 202 || body.message_id === undefined) {
        process.stderr.write(`send answered ${response.status}\n`);
        process.exit(1);
      }
      process.stdout.write(`${JSON.stringify({ id: body.message_id, sentAt, acceptedAt: now() })}\n`);
    }
  }),
);
